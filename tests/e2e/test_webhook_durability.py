"""The webhook's exactly-once promise on its cheap paths.

A handler that never touches the database (the help text, keyword replies) has its push recorded
by one autocommit INSERT, without an ORM session; a handler that uses the session (even only to
queue work after commit) has the record written in its own transaction. Either way the push is
recorded before the reply leaves, and a retry that Redis has forgotten is answered with the same
bytes and changes nothing. The dedup scripts run on per-thread Redis connections of their own,
which must survive Redis dropping them.
"""
from __future__ import annotations

import time

import pytest
import requests

from handlers import content
from handlers.routes import build_router
from tests.conftest import requires_postgres, requires_redis
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.extensions import enqueue_after_commit
from wx_service.ground.models import InboundPush
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.xml import parse_xml

TIMEOUT = 15


def _text_push(emulator, openid: str, words: str, mode: str) -> tuple[dict, bytes]:
    fields = [("ToUserName", emulator.original_id), ("FromUserName", openid), ("CreateTime", int(time.time())),
              ("MsgType", "text"), ("Content", words), ("MsgId", emulator.next_msg_id())]
    return sign_and_wrap(emulator, build_push_xml(fields), mode)


def _post(base_url: str, query: dict, body: bytes) -> requests.Response:
    r = requests.post(f"{base_url}/wechat", params=query, data=body, timeout=TIMEOUT,
                      headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    return r


def _reply_text(settings, r: requests.Response, mode: str) -> str:
    fields = parse_xml(r.content)
    if mode != "plaintext":
        crypto = MessageCrypto(settings.WECHAT_TOKEN, settings.WECHAT_AES_KEY, settings.WECHAT_APPID)
        fields = parse_xml(crypto.decrypt(fields["Encrypt"]))
    return fields["Content"]


def _records(wx) -> list[InboundPush]:
    from sqlalchemy import select

    with wx.db.unit_of_work() as session:
        return list(session.scalars(select(InboundPush)))


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
def test_a_plain_text_reply_is_recorded_and_answered_alike_after_redis_forgets(base_url, emulator, wx, mode):
    """The help text writes nothing but its record; the record alone answers a forgotten retry."""
    settings = wx.settings
    openid = "oDurable" + str(time.time_ns())[-12:]
    query, body = _text_push(emulator, openid, "你好", mode)
    first = _post(base_url, query, body)
    assert _reply_text(settings, first, mode) == settings.HELP_TEXT
    [record] = _records(wx)
    assert (record.openid, record.content, record.handler) == (openid, "你好", "handlers.content.help_text")
    assert record.response.encode("utf-8") == first.content

    wx.redis.flushdb()
    again = _post(base_url, query, body)
    assert again.content == first.content
    assert len(_records(wx)) == 1


def test_work_queued_after_commit_runs_once_even_when_redis_forgets(base_url, emulator, wx, app, monkeypatch,
                                                                    run_jobs):
    """A handler that writes no row but queues a message uses the session: a forgotten retry is
    caught by the record in that transaction, so the shopper gets the message once."""
    openid = next(iter(emulator.shoppers))
    requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid},
                  timeout=TIMEOUT).raise_for_status()
    emulator.open_window(openid, by_message=True)

    def help_and_follow_up(ctx):
        enqueue_after_commit("wx_service.ground.jobs.send_text", openid=ctx.openid, text="稍后客服会联系您")
        return replies.text("收到")

    monkeypatch.setattr(content, "help_text", help_and_follow_up)
    monkeypatch.setattr(app.extensions["wx_webhook"], "router", build_router())

    query, body = _text_push(emulator, openid, "你好", "safe")
    first = _post(base_url, query, body)
    run_jobs()
    wx.redis.flushdb()
    again = _post(base_url, query, body)
    run_jobs()
    assert again.content == first.content
    sent = [m["content"] for m in emulator.shoppers[openid].chat if m["via"] == "customer_service"]
    assert sent.count("稍后客服会联系您") == 1
    assert [r.msg_type for r in _records(wx)].count("text") == 1


@requires_redis
def test_pushes_are_still_deduplicated_after_redis_drops_the_webhooks_connections(base_url, emulator, wx):
    settings = wx.settings
    warm_query, warm_body = _text_push(emulator, "oDropA" + str(time.time_ns())[-12:], "你好", "safe")
    _post(base_url, warm_query, warm_body)

    db_index = wx.redis.connection_pool.connection_kwargs.get("db", 0)
    own_id = wx.redis.client_id()
    killed = 0
    for client in wx.redis.client_list():
        if int(client["db"]) == int(db_index) and int(client["id"]) != own_id:  # only this test's db
            killed += wx.redis.client_kill_filter(_id=client["id"])
    assert killed >= 1

    query, body = _text_push(emulator, "oDropB" + str(time.time_ns())[-12:], "你好", "safe")
    first = _post(base_url, query, body)
    assert _reply_text(settings, first, "safe") == settings.HELP_TEXT
    assert _post(base_url, query, body).content == first.content
    assert len(_records(wx)) == 2


@requires_postgres
def test_pushes_are_still_recorded_after_postgres_drops_the_webhooks_connections(base_url, emulator, wx):
    """Pushes that wrote nothing else are recorded on the autocommit pool's connections, which are
    not pinged before use. A database restart (here: every other session on this database
    terminated) must cost no push: each is answered, recorded once, and its retry gets the same
    bytes."""
    from sqlalchemy import text

    settings = wx.settings
    stamp = str(time.time_ns())[-10:]
    for i in range(6):
        _post(base_url, *_text_push(emulator, f"oPgWarm{i}x{stamp}", "你好", "safe"))
    assert wx.db.autocommit_engine.pool.checkedin() >= 1
    with wx.db.engine.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    assert killed >= 1
    wx.db.engine.dispose()  # the session pool's connections died too; this test is about the other pool

    for i in range(6):
        query, body = _text_push(emulator, f"oPgAfter{i}x{stamp}", "你好", "safe")
        first = _post(base_url, query, body)
        assert _reply_text(settings, first, "safe") == settings.HELP_TEXT
        assert _post(base_url, query, body).content == first.content
    records = _records(wx)
    assert len(records) == 12
    assert sorted(r.openid for r in records if r.openid.startswith("oPgAfter")) == \
        sorted(f"oPgAfter{i}x{stamp}" for i in range(6))
