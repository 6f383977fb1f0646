"""The emulator playing WeChat's web authorization (网页授权) for the OA's own pages.

Inside WeChat a page sends the shopper to open.weixin.qq.com/connect/oauth2/authorize; for
snsapi_base WeChat asks nothing and redirects straight back with ?code=…&state=…. The emulator
does the same at /_emulator/connect/oauth2/authorize, for the shopper named by the `openid` query
parameter (an emulator-only extra: "whose phone is this") or else the first one. The server then
trades the code at /_emulator/sns/oauth2/access_token, with WeChat's answers: codes are single-use
(40163 once used) and live 5 minutes (40029 after, and for anything unknown).
"""
from __future__ import annotations

import secrets
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request

from wx_service.edges.emulator.api import _error, _refuse_code_exchange, _state, wechat_api

bp = Blueprint("emulator_oauth_api", __name__)

CODE_LIFETIME = 300  # seconds, as WeChat's web authorization code
SCOPES = ("snsapi_base", "snsapi_userinfo")


class _Codes:
    """code -> {openid, appid, scope, expires_at, used}. Kept beside the emulator's state (whose
    module this task does not own); a code names its shopper by openid, and the exchange checks
    that shopper still exists, so an emulator reset also ends its codes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, dict[str, Any]] = {}


def _codes(app: Flask | None = None) -> _Codes:
    app = app or current_app
    found = app.extensions.get("wx_emulator_oauth")
    if found is None:
        found = app.extensions.setdefault("wx_emulator_oauth", _Codes())
    return found


def _page_error(status: int, message: str) -> tuple[str, int, dict[str, str]]:
    """WeChat shows a plain error page in the browser (no redirect) for a malformed request."""
    return message, status, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/connect/oauth2/authorize")
def authorize() -> Response | tuple[str, int, dict[str, str]]:
    """snsapi_base: no consent screen; redirect_uri?code=…&state=… at once."""
    state = _state()
    args = request.args
    if args.get("appid") != state.appid:
        return _page_error(400, "appid 参数错误 (errcode 10003 redirect_uri / appid mismatch)")
    if args.get("response_type") != "code":
        return _page_error(400, "response_type 参数错误")
    if args.get("scope") not in SCOPES:
        return _page_error(400, "scope 参数错误或没有 scope 权限 (errcode 10005)")
    target = args.get("redirect_uri", "")
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _page_error(400, "redirect_uri 参数错误 (errcode 10003)")
    openid = args.get("openid", "")
    with state.lock:
        shopper = state.shoppers.get(openid) if openid else next(iter(state.shoppers.values()), None)
        if shopper is None:
            return _page_error(404, "unknown shopper (emulator: pass the OA openid of an emulated shopper)")
        now = state.now()
        code = secrets.token_hex(16)
    store = _codes()
    with store.lock:
        for old in [c for c, v in store.codes.items() if v["expires_at"] <= now]:
            del store.codes[old]
        store.codes[code] = {"openid": shopper.openid, "appid": state.appid, "scope": args["scope"],
                             "expires_at": now + CODE_LIFETIME, "used": False}
    query = urlencode({"code": code, "state": args.get("state", "")})
    joiner = "&" if parts.query else "?"
    return redirect(target.split("#", 1)[0] + joiner + query, code=302)


@bp.get("/sns/oauth2/access_token")
@wechat_api("sns/oauth2/access_token", needs_token=False)
def access_token() -> Response:
    """Code → {access_token, expires_in, refresh_token, openid, scope}; appid+secret authenticate."""
    state = _state()
    args = request.args
    refused = _refuse_code_exchange(args, "code")
    if refused is not None:
        return refused
    store = _codes()
    now = state.now()
    with store.lock:
        found = store.codes.get(args["code"])
        if found is None or found["appid"] != args["appid"] or found["expires_at"] <= now:
            return _error(40029, "invalid code")
        if found["used"]:
            return _error(40163, "code been used")
        found["used"] = True
    with state.lock:
        if found["openid"] not in state.shoppers:
            return _error(40029, "invalid code")
    return jsonify(access_token=secrets.token_urlsafe(48), expires_in=7200,
                   refresh_token=secrets.token_urlsafe(48), openid=found["openid"], scope=found["scope"])
