"""The benchmark's baseline: the least a safe-mode webhook can do, with Flask and wechatpy only.

It decrypts the push (wechatpy checks msg_signature and the app id while doing so), reads who sent
it, and answers with an encrypted text reply carrying the same help text the real service sends.
No timestamp window, no replay guard, no hardened parse, no dedup, no database, no logging: the
throughput of this endpoint is the ceiling that the full pipeline is compared with.

Served by gunicorn exactly like the real app (bench/webhook_load.py starts both):

    gunicorn -w 2 -k gthread --threads 4 bench.baseline_app:app

Settings come from the same environment variables as the real service (demo values by default).
"""
from __future__ import annotations

import os

from flask import Flask, Response, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

# The demo values of config/settings.py, repeated so this file imports nothing from the service.
TOKEN = os.environ.get("WECHAT_TOKEN") or "demostoretoken"
AES_KEY = os.environ.get("WECHAT_AES_KEY") or "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = os.environ.get("WECHAT_APPID") or "wx00d3a0cafe5e7a11"
HELP_TEXT = (
    "您可以：\n"
    "· 回复“活动”查看商场最新活动\n"
    "· 回复“新闻”查看商场资讯\n"
    "· 回复“门店”查看营业时间与地址\n"
    "· 回复“人工”联系客服"
)

app = Flask(__name__)
crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)


@app.post("/wechat")
def receive_push() -> Response:
    args = request.args
    timestamp = args.get("timestamp", "")
    nonce = args.get("nonce", "")
    try:
        plain = crypto.decrypt_message(request.get_data(), args.get("msg_signature", ""), timestamp, nonce)
    except Exception as exc:  # bad signature, bad padding, wrong app id, not XML
        return Response(f"{type(exc).__name__}\n", status=400, mimetype="text/plain")
    message = parse_message(plain)
    reply = TextReply(content=HELP_TEXT, message=message)
    return Response(crypto.encrypt_message(reply.render(), nonce, timestamp),
                    content_type="application/xml; charset=utf-8")


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok\n", mimetype="text/plain")
