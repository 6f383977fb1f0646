"""Operations: the health endpoint and the structured log lines of a push."""
from __future__ import annotations

import io
import json
import logging

import redis as redis_lib
import requests

from wx_service.ground.logs import JsonFormatter, TextFormatter, _ContextFilter, log_context, mask_openid


def test_health_reports_database_and_redis(app, base_url):
    res = requests.get(f"{base_url}/healthz")
    assert res.status_code == 200
    assert res.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_health_is_503_and_names_the_failing_part(app, base_url, wx, monkeypatch):
    def down():
        raise redis_lib.ConnectionError("Connection refused")

    monkeypatch.setattr(wx.redis, "ping", down)
    res = requests.get(f"{base_url}/healthz")
    assert res.status_code == 503
    assert res.json()["checks"] == {"database": "ok", "redis": "error: ConnectionError"}


def test_every_log_line_of_a_push_carries_the_message_id_and_a_masked_openid(app, base_url, emulator):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        openid = next(iter(emulator.shoppers))
        out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": "你好"}).json()
        assert out["delivered"]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    push_lines = [line for line in lines if line["logger"] == "wx_service.edges.webhook"]
    assert push_lines, lines
    for line in push_lines:
        assert line["msg_id"].startswith("msg:")
        assert line["openid"] == mask_openid(openid)
    assert openid not in stream.getvalue()


def test_mask_openid_keeps_only_the_ends():
    assert mask_openid("oEmu01abcdefghijklmnop") == "oEmu***mnop"
    assert mask_openid("short") == "***"
    assert mask_openid("") == ""


def _one_line(formatter: logging.Formatter, **extra) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.log_fields")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(msg_id="msg:42"):
            logger.error("amount 1 differs from the order's 10000 fen", extra=extra)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_the_json_formatter_prints_every_extra_field_after_the_context():
    line = json.loads(_one_line(JsonFormatter(), out_trade_no="N20261203001", notification_id="EV-1", count=3))
    assert line["msg"] == "amount 1 differs from the order's 10000 fen"
    assert (line["out_trade_no"], line["notification_id"], line["count"]) == ("N20261203001", "EV-1", 3)
    assert line["msg_id"] == "msg:42"


def test_the_text_formatter_prints_every_extra_field_after_the_context():
    line = _one_line(TextFormatter(), out_trade_no="N20261203001", notification_id="EV-1")
    assert line.rstrip().endswith("[msg_id=msg:42 out_trade_no=N20261203001 notification_id=EV-1]")
