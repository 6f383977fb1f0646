"""The webhook end to end: WeChat-shaped pushes over real HTTP, WeChat-shaped bytes back.

Pushes are built the way WeChat builds them (wx_service.edges.emulator.shopper) and posted with
`requests` to the live server; replies are checked the way WeChat checks them (signature, then
decryption, then who they are addressed to), and the database is read to see what was handled.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from handlers import content
from handlers.routes import (
    MENU_ACTIVITIES,
    MENU_CUSTOMER_SERVICE,
    MENU_MALL_NEWS,
    MENU_STORE_INFO,
    build_router,
)
from members.models import Follower, FollowerScan
from tests.conftest import requires_redis
from wx_service.edges.emulator.shopper import UNAVAILABLE, build_push_xml, sign_and_wrap
from wx_service.ground.models import InboundPush
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.errors import InvalidAppId
from wx_service.ground.protocol.signature import sign
from wx_service.ground.protocol.xml import parse_xml

MODES = ("plaintext", "compatible", "safe")
TIMEOUT = 15  # seconds any single request may take before the test gives up on it


# -- helpers ----------------------------------------------------------------------------------
def new_openid() -> str:
    return "oTest" + secrets.token_hex(12)


def text_fields(emulator, openid: str, content_: str, msg_id: int | None = None,
                create_time: int | None = None) -> list[tuple[str, Any]]:
    return [("ToUserName", emulator.original_id), ("FromUserName", openid),
            ("CreateTime", create_time or int(time.time())), ("MsgType", "text"),
            ("Content", content_), ("MsgId", msg_id or emulator.next_msg_id())]


def event_fields(emulator, openid: str, event: str, key: str | None = None,
                 create_time: int | None = None, **extra: str) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [("ToUserName", emulator.original_id), ("FromUserName", openid),
                                     ("CreateTime", create_time or int(time.time())), ("MsgType", "event"),
                                     ("Event", event)]
    if key is not None:
        fields.append(("EventKey", key))
    fields.extend(extra.items())
    return fields


def post(base_url: str, query: dict[str, str], body: bytes, **kwargs) -> requests.Response:
    return requests.post(f"{base_url}/wechat", params=query, data=body, timeout=TIMEOUT,
                         headers={"Content-Type": "text/xml"}, **kwargs)


def push(base_url: str, emulator, fields, mode: str = "safe", **wrap) -> tuple[dict, bytes, requests.Response]:
    """Build, sign (and encrypt) a push as WeChat would, post it; the query, body and response."""
    query, body = sign_and_wrap(emulator, build_push_xml(fields), mode, **wrap)
    return query, body, post(base_url, query, body)


def open_reply(settings, response: requests.Response, encrypted: bool) -> dict[str, Any]:
    """Check a passive reply as WeChat does and return its fields (decrypted when it was encrypted)."""
    assert response.status_code == 200, response.text
    fields = parse_xml(response.content)
    if not encrypted:
        assert "Encrypt" not in fields
        return fields
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}, fields
    expected = sign(settings.WECHAT_TOKEN, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert fields["MsgSignature"] == expected, "reply MsgSignature does not verify"
    crypto = MessageCrypto(settings.WECHAT_TOKEN, settings.WECHAT_AES_KEY, settings.WECHAT_APPID)
    return parse_xml(crypto.decrypt(fields["Encrypt"]))


def reply_for(settings, response: requests.Response, mode: str, openid: str) -> dict[str, Any]:
    fields = open_reply(settings, response, encrypted=mode != "plaintext")
    assert fields["ToUserName"] == openid
    assert fields["FromUserName"] == settings.WECHAT_ORIGINAL_ID
    assert fields["CreateTime"].isdigit()
    return fields


def articles(reply: dict[str, Any]) -> list[dict[str, Any]]:
    items = reply["Articles"]["item"]
    items = items if isinstance(items, list) else [items]
    assert int(reply["ArticleCount"]) == len(items)
    return items


def rows(wx, model, *where) -> list:
    with wx.db.unit_of_work() as session:
        return list(session.scalars(select(model).where(*where)))


def count(wx, model, *where) -> int:
    with wx.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


DEMO_ACTIVITIES = ("双十二满 300 减 50", "周末亲子手作课", "美妆柜台免费试妆")


def this_weeks_activities(app) -> list[int]:
    """Three published activities running now (so in this store-week), soonest first."""
    from datetime import timedelta

    from tests.integration.content_helpers import activity
    from wx_service.ground.db import utcnow

    now = utcnow()
    return [activity(app, title, starts_at=now - timedelta(hours=3 - i), ends_at=now + timedelta(hours=1))
            for i, title in enumerate(DEMO_ACTIVITIES)]


def load_demo(app, wx) -> None:
    from wx_service.edges.demo_data import load_demo_data

    with app.app_context(), wx.db.unit_of_work():
        load_demo_data()


@pytest.fixture
def settings_(wx):
    return wx.settings


@pytest.fixture
def pipeline(app):
    return app.extensions["wx_webhook"]


def use_handler(monkeypatch, pipeline, name: str, replacement) -> None:
    """Swap one handler in handlers.content and rebuild the pipeline's router around it (the router
    holds function references taken at app creation); monkeypatch restores both after the test."""
    monkeypatch.setattr(content, name, replacement)
    monkeypatch.setattr(pipeline, "router", build_router())


# -- 1. URL verification ----------------------------------------------------------------------
def test_url_verification_echoes_echostr_exactly_when_signed(base_url, settings_):
    ts, nonce = str(int(time.time())), "1514711492"
    for echostr in ("4375120948345356249", "a b+c/=&%?<x>", "中文回显"):
        r = requests.get(f"{base_url}/wechat", params={
            "signature": sign(settings_.WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
            "echostr": echostr}, timeout=TIMEOUT)
        assert r.status_code == 200
        assert r.content == echostr.encode("utf-8")


@pytest.mark.parametrize("case", ["bad signature", "other token", "no signature", "no timestamp", "no nonce"])
def test_url_verification_refuses_unsigned_requests(base_url, settings_, case):
    ts, nonce, echostr = str(int(time.time())), "486452656", "echo-me-1714037059"
    query = {"signature": sign(settings_.WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
             "echostr": echostr}
    if case == "bad signature":
        query["signature"] = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    elif case == "other token":
        query["signature"] = sign("not-the-token", ts, nonce)
    elif case == "no signature":
        del query["signature"]
    elif case == "no timestamp":
        del query["timestamp"]
    else:
        del query["nonce"]
    r = requests.get(f"{base_url}/wechat", params=query, timeout=TIMEOUT)
    assert r.status_code == 403
    assert echostr not in r.text


@pytest.mark.parametrize("skew", [-400, 400])
def test_url_verification_refuses_stale_timestamp(base_url, settings_, skew):
    ts, nonce = str(int(time.time()) + skew), "1320562132"
    r = requests.get(f"{base_url}/wechat", params={
        "signature": sign(settings_.WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
        "echostr": "stale-echo"}, timeout=TIMEOUT)
    assert r.status_code == 403
    assert "stale-echo" not in r.text


# -- 2. The three modes -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_text_message_reply_in_each_mode(base_url, emulator, wx, settings_, mode):
    openid = new_openid()
    query, body, r = push(base_url, emulator, text_fields(emulator, openid, "你好"), mode)
    if mode == "plaintext":
        assert "encrypt_type" not in query
    else:
        assert query["encrypt_type"] == "aes" and b"<Encrypt>" in body
        if mode == "safe":
            assert b"FromUserName" not in body  # only the envelope travels in the clear
    assert r.headers["Content-Type"].startswith("application/xml")
    reply = reply_for(settings_, r, mode, openid)
    assert reply["MsgType"] == "text"
    assert reply["Content"] == settings_.HELP_TEXT
    [record] = rows(wx, InboundPush)
    assert (record.openid, record.msg_type, record.content) == (openid, "text", "你好")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("words", ["看看 </xml> 这个", "]]> 和 <![CDATA[", "<Encrypt>x</Encrypt>"])
def test_markup_typed_by_a_shopper_is_just_text(base_url, emulator, wx, settings_, mode, words):
    openid = next(iter(emulator.shoppers))
    requests.post(f"{base_url}/_emulator/control/mode", json={"mode": mode}, timeout=TIMEOUT).raise_for_status()
    out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": words},
                        timeout=TIMEOUT).json()
    assert out["delivered"] and out["reply"] == "text", out
    assert [m["content"] for m in emulator.shoppers[openid].chat if m["via"] == "passive"] == [settings_.HELP_TEXT]
    [record] = rows(wx, InboundPush)
    assert record.content == words


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_encrypted_reply_is_bound_to_this_appid(base_url, emulator, settings_, mode):
    """The reply is really encrypted, and for this account: it names our AppID as receiver."""
    _, _, r = push(base_url, emulator, text_fields(emulator, new_openid(), "帮助"), mode)
    envelope = parse_xml(r.content)
    stranger = MessageCrypto(settings_.WECHAT_TOKEN, settings_.WECHAT_AES_KEY, "wx0000000000000000")
    with pytest.raises(InvalidAppId):
        stranger.decrypt(envelope["Encrypt"])
    assert settings_.HELP_TEXT.encode() not in r.content


def test_emulated_shopper_sees_the_reply_in_every_mode(base_url, emulator, settings_):
    openid = next(iter(emulator.shoppers))
    for mode in MODES:
        requests.post(f"{base_url}/_emulator/control/mode", json={"mode": mode}, timeout=TIMEOUT).raise_for_status()
        out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": f"随便说说 {mode}"},
                            timeout=TIMEOUT).json()
        assert out["delivered"] and out["reply"] == "text", out
    chat = emulator.shoppers[openid].chat
    passive = [m for m in chat if m["via"] == "passive"]
    assert [m["content"] for m in passive] == [settings_.HELP_TEXT] * 3
    assert not [m for m in chat if m.get("content") == UNAVAILABLE]


# -- 3. Compatible mode trusts only the decrypted copy ----------------------------------------
def _tampered_compatible(emulator, real_fields, fake_fields) -> tuple[dict, bytes]:
    """A compatible-mode push whose Encrypt (and signatures) are genuine for `real_fields`, but
    whose plaintext copy shows `fake_fields`."""
    query, body = sign_and_wrap(emulator, build_push_xml(real_fields), "compatible")
    encrypt = parse_xml(body)["Encrypt"]
    fake = build_push_xml(fake_fields).replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n</xml>")
    return query, fake.encode("utf-8")


def test_compatible_mode_ignores_a_tampered_plaintext_copy(base_url, emulator, wx, settings_, app):
    load_demo(app, wx)
    victim, attacker = new_openid(), new_openid()
    real = text_fields(emulator, victim, "你好")
    # The clear copy claims another sender, another MsgId and a keyword with a news reply.
    fake = text_fields(emulator, attacker, "活动", msg_id=999)
    query, body = _tampered_compatible(emulator, real, fake)
    assert b"999" in body and attacker.encode() in body
    reply = reply_for(settings_, post(base_url, query, body), "compatible", victim)
    assert reply["MsgType"] == "text" and reply["Content"] == settings_.HELP_TEXT
    [record] = rows(wx, InboundPush)
    assert (record.openid, record.content) == (victim, "你好")
    assert record.dedup_key == f"msg:{dict(real)['MsgId']}"


def test_compatible_mode_tampered_event_is_not_handled_as_the_clear_copy_says(base_url, emulator, wx, settings_):
    openid = new_openid()
    real = text_fields(emulator, openid, "你好")
    fake = event_fields(emulator, openid, "subscribe", "qrscene_counter-fake", Ticket="gQfake")
    query, body = _tampered_compatible(emulator, real, fake)
    reply = reply_for(settings_, post(base_url, query, body), "compatible", openid)
    assert reply["Content"] == settings_.HELP_TEXT
    assert count(wx, Follower) == 0 and count(wx, FollowerScan) == 0
    [record] = rows(wx, InboundPush)
    assert record.msg_type == "text" and record.event == ""


# -- 4. Retries ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_three_identical_retries_get_identical_bytes_and_run_once(base_url, emulator, wx, settings_, mode):
    openid = new_openid()
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), mode)
    responses = [post(base_url, query, body) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[0].content == responses[1].content == responses[2].content
    assert reply_for(settings_, responses[0], mode, openid)["Content"] == settings_.HELP_TEXT
    assert count(wx, InboundPush) == 1


def test_retried_qr_subscribe_records_one_follower_and_one_scan(base_url, emulator, wx, settings_):
    openid = new_openid()
    fields = event_fields(emulator, openid, "subscribe", "qrscene_counter-shoes-l3", Ticket="gQticket")
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    responses = [post(base_url, query, body) for _ in range(3)]
    assert len({r.content for r in responses}) == 1
    assert reply_for(settings_, responses[0], "safe", openid)["Content"] == settings_.WELCOME_TEXT
    assert count(wx, InboundPush) == 1
    assert count(wx, Follower) == 1
    assert count(wx, FollowerScan) == 1


def _hold_first_attempt(monkeypatch, pipeline, fail: bool = False):
    """The help-text handler, made to wait for the test (and then fail, if asked)."""
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    original = content.help_text

    def held_help(ctx):
        calls.append(ctx.openid)
        started.set()
        release.wait(TIMEOUT)
        if fail:
            raise RuntimeError("the first attempt fails after its retry was told success")
        return original(ctx)

    use_handler(monkeypatch, pipeline, "help_text", held_help)
    return started, release, calls


def _send_in_background(base_url: str, query: dict[str, str], body: bytes):
    """Post a push from another thread; the response lands in the returned dict under "r"."""
    first: dict[str, requests.Response] = {}
    thread = threading.Thread(target=lambda: first.setdefault("r", post(base_url, query, body)))
    thread.start()
    return thread, first


def test_retry_while_the_first_attempt_runs_gets_success(base_url, emulator, wx, settings_, pipeline, monkeypatch):
    started, release, calls = _hold_first_attempt(monkeypatch, pipeline)
    openid = new_openid()
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), "safe")
    thread, first = _send_in_background(base_url, query, body)
    try:
        assert started.wait(TIMEOUT), "the first attempt never reached the handler"
        duplicate = post(base_url, query, body)
        assert duplicate.status_code == 200
        assert duplicate.content == b"success"
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert reply_for(settings_, first["r"], "safe", openid)["Content"] == settings_.HELP_TEXT
    later = post(base_url, query, body)
    assert later.content == first["r"].content
    assert calls == [openid]
    assert count(wx, InboundPush) == 1


def test_reply_of_an_attempt_whose_retry_got_success_goes_by_customer_service_once(
        base_url, emulator, wx, settings_, pipeline, monkeypatch, run_jobs):
    """WeChat stops retrying once told `success`, so the reply the running attempt produces must
    reach the shopper another way: by the customer-service API, once, however many duplicates."""
    openid = next(iter(emulator.shoppers))
    assert requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid},
                         timeout=TIMEOUT).json()["delivered"]  # opens the customer-service window
    run_jobs()
    started, release, calls = _hold_first_attempt(monkeypatch, pipeline)
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), "safe")
    thread, first = _send_in_background(base_url, query, body)
    try:
        assert started.wait(TIMEOUT)
        assert [post(base_url, query, body).content for _ in range(2)] == [b"success", b"success"]
    finally:
        release.set()
        thread.join(TIMEOUT)
    run_jobs()
    late = [m["content"] for m in _cs_messages(emulator, openid)]
    assert late == [settings_.HELP_TEXT]
    assert post(base_url, query, body).content == first["r"].content  # finished: the recorded bytes
    run_jobs()
    assert [m["content"] for m in _cs_messages(emulator, openid)] == late
    assert calls == [openid]


def test_a_push_that_fails_after_its_retry_got_success_sends_nothing_late(
        base_url, emulator, wx, settings_, pipeline, monkeypatch, run_jobs, caplog):
    openid = next(iter(emulator.shoppers))
    started, release, _ = _hold_first_attempt(monkeypatch, pipeline, fail=True)
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), "safe")
    thread, first = _send_in_background(base_url, query, body)
    try:
        assert started.wait(TIMEOUT)
        assert post(base_url, query, body).content == b"success"
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert first["r"].status_code == 500
    with caplog.at_level("WARNING", logger="wx_service.edges.webhook"):
        run_jobs()
    assert _cs_messages(emulator, openid) == []
    assert count(wx, InboundPush) == 0
    assert any("never finished" in r.getMessage() for r in caplog.records)


@requires_redis
def test_a_push_costs_one_redis_command(base_url, emulator, wx):
    """The replay guard and the dedup claim are one Lua call; retries are answered from the
    database. (The web process makes one round trip to Redis per push.)"""
    def calls() -> dict[str, int]:
        stats = wx.redis.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_info"}

    push(base_url, emulator, text_fields(emulator, new_openid(), "你好"))  # warm: script loaded, token cached
    before = calls()
    for _ in range(5):
        push(base_url, emulator, text_fields(emulator, new_openid(), "你好"))
    after = calls()
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    # The test server runs each request on a new thread, and the scripts keep a connection per
    # thread: each request here also opens one (HELLO, SELECT), which a gunicorn thread does once.
    for setup in ("cmdstat_hello", "cmdstat_select", "cmdstat_client|setinfo"):
        assert spent.pop(setup, 0) <= 5
    # All inside the one script: the SETs of nonce and claim, the EXISTS of the desk's mark.
    assert spent == {"cmdstat_evalsha": 5, "cmdstat_set": 10, "cmdstat_exists": 5}


@requires_redis
def test_a_message_to_an_open_conversation_costs_one_more_redis_command_the_consoles_event(
        base_url, emulator, wx, app):
    """A shopper talking to an agent: the claim (which also told the webhook where the push goes)
    and, after commit, the PUBLISH every console hears. Nothing else."""
    from service_desk import intake

    def calls() -> dict[str, int]:
        stats = wx.redis.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_info"}

    openids = [new_openid() for _ in range(5)]
    with app.app_context(), wx.db.unit_of_work():
        for openid in openids:
            intake.ask_for_person(openid, "keyword")
    push(base_url, emulator, text_fields(emulator, new_openid(), "你好"))  # warm
    before = calls()
    for openid in openids:
        push(base_url, emulator, text_fields(emulator, openid, "我的订单还没到"))
    after = calls()
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    for setup in ("cmdstat_hello", "cmdstat_select", "cmdstat_client|setinfo"):
        assert spent.pop(setup, 0) <= 5
    assert spent == {"cmdstat_evalsha": 5, "cmdstat_set": 10, "cmdstat_exists": 5, "cmdstat_publish": 5}


def test_handler_failure_is_500_and_the_retry_runs_it_again(base_url, emulator, wx, settings_, pipeline, monkeypatch):
    calls: list[str] = []
    original = content.help_text

    def flaky_help(ctx):
        calls.append(ctx.openid)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return original(ctx)

    use_handler(monkeypatch, pipeline, "help_text", flaky_help)
    openid = new_openid()
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), "safe")
    failed = post(base_url, query, body)
    assert failed.status_code == 500
    assert count(wx, InboundPush) == 0  # the failed attempt left nothing behind
    retried = post(base_url, query, body)
    assert reply_for(settings_, retried, "safe", openid)["Content"] == settings_.HELP_TEXT
    assert post(base_url, query, body).content == retried.content
    assert calls == [openid, openid]
    assert count(wx, InboundPush) == 1


def test_failed_qr_subscribe_leaves_no_follower_until_the_retry(base_url, emulator, wx, settings_, pipeline,
                                                                monkeypatch):
    """A handler failing after it wrote rows rolls them back with the push record."""
    from handlers import follow

    attempts: list[int] = []
    original = follow.on_subscribe

    def failing_after_write(ctx):
        reply = original(ctx)  # the follower and the scan are flushed ...
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("... and then something breaks")
        return reply

    monkeypatch.setattr(follow, "on_subscribe", failing_after_write)
    monkeypatch.setattr(pipeline, "router", build_router())
    openid = new_openid()
    fields = event_fields(emulator, openid, "subscribe", "qrscene_counter-bags-l1", Ticket="gQt")
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    assert post(base_url, query, body).status_code == 500
    assert count(wx, Follower) == 0 and count(wx, FollowerScan) == 0
    ok = post(base_url, query, body)
    assert reply_for(settings_, ok, "safe", openid)["Content"] == settings_.WELCOME_TEXT
    assert count(wx, Follower) == 1 and count(wx, FollowerScan) == 1


def test_unrelated_integrity_error_is_500_and_the_retry_runs_again(base_url, emulator, wx, settings_, pipeline,
                                                                   monkeypatch):
    """A handler tripping over some other unique key (say two first pushes of one new follower
    racing) is a failure like any other, not "this push was already handled"."""
    from sqlalchemy.exc import IntegrityError

    calls: list[str] = []
    original = content.help_text

    def racing_help(ctx):
        calls.append(ctx.openid)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO followers ...", {}, Exception("duplicate key value: openid"))
        return original(ctx)

    use_handler(monkeypatch, pipeline, "help_text", racing_help)
    openid = new_openid()
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, openid, "你好")), "safe")
    assert post(base_url, query, body).status_code == 500
    retried = post(base_url, query, body)
    assert reply_for(settings_, retried, "safe", openid)["Content"] == settings_.HELP_TEXT
    assert calls == [openid, openid]
    assert count(wx, InboundPush) == 1


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
def test_redis_forgetting_a_push_does_not_run_it_twice(base_url, emulator, wx, settings_, mode):
    openid = new_openid()
    fields = event_fields(emulator, openid, "subscribe", "qrscene_counter-toys-l4", Ticket="gQt")
    query, body = sign_and_wrap(emulator, build_push_xml(fields), mode)
    first = post(base_url, query, body)
    assert reply_for(settings_, first, mode, openid)["Content"] == settings_.WELCOME_TEXT
    wx.redis.flushdb()
    second = post(base_url, query, body)
    assert second.status_code == 200
    assert second.content == first.content
    assert count(wx, InboundPush) == 1
    assert count(wx, FollowerScan) == 1


# -- 5. Replays and forgeries -----------------------------------------------------------------
def test_same_query_with_a_different_body_is_refused(base_url, emulator, wx, settings_):
    openid = new_openid()
    query, body, first = push(base_url, emulator, text_fields(emulator, openid, "你好"), "plaintext")
    assert first.status_code == 200
    forged = build_push_xml(text_fields(emulator, new_openid(), "人工")).encode()
    replay = post(base_url, query, forged)
    assert replay.status_code == 403
    assert count(wx, InboundPush) == 1
    # The genuine retry (same query, same body) is still answered as before.
    assert post(base_url, query, body).content == first.content


def test_replay_refused_even_when_the_first_body_was_refused(base_url, emulator, wx):
    """A query seen once is bound to that body, whatever became of it."""
    query, _ = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), "x")), "plaintext")
    assert post(base_url, query, b"<xml><broken>").status_code == 400
    r = post(base_url, query, build_push_xml(text_fields(emulator, new_openid(), "你好")).encode())
    assert r.status_code == 403
    assert count(wx, InboundPush) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("skew", [-301 - 60, 301 + 60])
def test_stale_timestamp_is_refused(base_url, emulator, wx, mode, skew):
    ts = str(int(time.time()) + skew)
    _, _, r = push(base_url, emulator, text_fields(emulator, new_openid(), "你好"), mode, timestamp=ts)
    assert r.status_code == 403
    assert count(wx, InboundPush) == 0


@pytest.mark.parametrize("mode", MODES)
def test_bad_signature_is_refused(base_url, emulator, wx, mode):
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), "你好")), mode)
    query["signature"] = sign("wrong-token", query["timestamp"], query["nonce"])
    assert post(base_url, query, body).status_code == 403
    del query["signature"]
    assert post(base_url, query, body).status_code == 403
    assert count(wx, InboundPush) == 0


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_bad_msg_signature_is_refused(base_url, emulator, wx, mode):
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), "你好")), mode)
    good = query["msg_signature"]
    query["msg_signature"] = sign(emulator.token, query["timestamp"], query["nonce"], "another Encrypt")
    assert post(base_url, query, body).status_code == 403
    query["msg_signature"] = good.upper()  # signatures are lowercase hex; case matters
    assert post(base_url, query, body).status_code == 403
    del query["msg_signature"]
    assert post(base_url, query, body).status_code == 403
    assert count(wx, InboundPush) == 0


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_encrypt_for_another_appid_is_refused(base_url, emulator, wx, mode):
    openid = new_openid()
    plain = build_push_xml(text_fields(emulator, openid, "你好"))
    other = MessageCrypto(emulator.token, emulator.aes_key, "wx0000000000000000").encrypt(plain)
    ts, nonce = str(int(time.time())), "778899"
    query = {"signature": sign(emulator.token, ts, nonce), "timestamp": ts, "nonce": nonce,
             "encrypt_type": "aes", "msg_signature": sign(emulator.token, ts, nonce, other)}
    if mode == "safe":
        body = (f"<xml><ToUserName><![CDATA[{emulator.original_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{other}]]></Encrypt></xml>")
    else:
        body = plain.replace("</xml>", f"<Encrypt><![CDATA[{other}]]></Encrypt></xml>")
    assert post(base_url, query, body.encode()).status_code == 403
    assert count(wx, InboundPush) == 0


def test_push_addressed_to_another_account_is_refused(base_url, emulator, wx):
    fields = text_fields(emulator, new_openid(), "你好")
    fields[0] = ("ToUserName", "gh_someoneelse01")
    _, _, r = push(base_url, emulator, fields, "safe")
    assert r.status_code == 403
    assert count(wx, InboundPush) == 0


@pytest.mark.parametrize("mode, accepted", [("plaintext", False), ("compatible", True), ("safe", True)])
def test_an_account_that_requires_encryption_refuses_plaintext_pushes(base_url, emulator, wx, pipeline,
                                                                      monkeypatch, mode, accepted):
    import dataclasses

    monkeypatch.setattr(pipeline, "settings", dataclasses.replace(pipeline.settings, WECHAT_REQUIRE_ENCRYPTION=True))
    _, _, r = push(base_url, emulator, text_fields(emulator, new_openid(), "你好"), mode)
    assert r.status_code == (200 if accepted else 403)
    assert count(wx, InboundPush) == (1 if accepted else 0)


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_aes_push_without_encrypt_is_refused(base_url, emulator, wx, mode):
    plain = build_push_xml(text_fields(emulator, new_openid(), "你好"))
    ts, nonce = str(int(time.time())), "556677"
    query = {"signature": sign(emulator.token, ts, nonce), "timestamp": ts, "nonce": nonce,
             "encrypt_type": "aes", "msg_signature": sign(emulator.token, ts, nonce, "")}
    body = plain if mode == "compatible" else f"<xml><ToUserName><![CDATA[{emulator.original_id}]]></ToUserName></xml>"
    r = post(base_url, query, body.encode())
    assert r.status_code == 400
    assert count(wx, InboundPush) == 0


# -- 7. Routing ---------------------------------------------------------------------------------
def test_subscribe_via_qr_records_follower_and_scan(base_url, emulator, wx, settings_):
    openid = new_openid()
    created = int(time.time())
    _, _, r = push(base_url, emulator, event_fields(emulator, openid, "subscribe", "qrscene_counter-watch-l1",
                                                    create_time=created, Ticket="gQwatch"), "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == settings_.WELCOME_TEXT
    [follower] = rows(wx, Follower)
    assert (follower.openid, follower.subscribed, follower.first_scene) == (openid, True, "counter-watch-l1")
    assert int(follower.first_subscribed_at.timestamp()) == created
    [scan] = rows(wx, FollowerScan)
    assert (scan.follower_id, scan.scene, scan.subscribed_by_scan) == (follower.id, "counter-watch-l1", True)


def test_plain_subscribe_records_follower_without_scene(base_url, emulator, wx, settings_):
    openid = new_openid()
    _, _, r = push(base_url, emulator, event_fields(emulator, openid, "subscribe", ""), "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == settings_.WELCOME_TEXT
    [follower] = rows(wx, Follower)
    assert follower.first_scene == "" and follower.subscribed
    assert count(wx, FollowerScan) == 0


def test_unsubscribe_marks_the_follower_and_keeps_the_row(base_url, emulator, wx, settings_):
    openid = new_openid()
    now = int(time.time())
    push(base_url, emulator, event_fields(emulator, openid, "subscribe", "qrscene_counter-a", create_time=now - 5,
                                          Ticket="gQa"), "safe")
    _, _, r = push(base_url, emulator, event_fields(emulator, openid, "unsubscribe", "", create_time=now), "safe")
    assert r.status_code == 200 and r.content == b"success"  # nothing is shown to someone who left
    [follower] = rows(wx, Follower)
    assert follower.subscribed is False
    assert follower.first_scene == "counter-a"
    assert int(follower.unsubscribed_at.timestamp()) == now
    assert count(wx, FollowerScan) == 1


def test_scan_by_an_existing_follower_adds_a_scan(base_url, emulator, wx, settings_, app):
    load_demo(app, wx)
    openid = new_openid()
    now = int(time.time())
    push(base_url, emulator, event_fields(emulator, openid, "subscribe", "", create_time=now - 10), "safe")
    _, _, r = push(base_url, emulator, event_fields(emulator, openid, "SCAN", "counter-cosmetics-l2",
                                                    create_time=now, Ticket="demo-counter-cosmetics-l2"), "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == "欢迎来到二楼美妆柜台！"
    _, _, r2 = push(base_url, emulator, event_fields(emulator, openid, "SCAN", "unknown-scene",
                                                     create_time=now, Ticket="gQu"), "safe")
    assert r2.content == b"success"
    [follower] = rows(wx, Follower)
    assert follower.first_scene == ""
    scans = rows(wx, FollowerScan)
    assert [(s.scene, s.subscribed_by_scan) for s in sorted(scans, key=lambda s: s.id)] == [
        ("counter-cosmetics-l2", False), ("unknown-scene", False)]


@pytest.mark.parametrize("mode", MODES)
def test_menu_clicks_get_their_replies(base_url, emulator, wx, settings_, app, mode):
    load_demo(app, wx)
    ids = this_weeks_activities(app)
    openid = new_openid()

    def click(key: str) -> dict[str, Any]:
        _, _, r = push(base_url, emulator, event_fields(emulator, openid, "CLICK", key), mode)
        return reply_for(settings_, r, mode, openid)

    news = click(MENU_MALL_NEWS)
    assert news["MsgType"] == "news"
    assert [a["Title"] for a in articles(news)] == ["南山百货焕新开业", "会员日预告"]
    activities = click(MENU_ACTIVITIES)
    assert activities["MsgType"] == "news"
    # A menu click may carry several articles: the demo's activity of this week and the test's three.
    urls = [a["Url"] for a in articles(activities)]
    assert len(urls) == 4 and [u for u in urls if u in {f"{base_url}/h5/activities/{i}" for i in ids}] == [
        f"{base_url}/h5/activities/{i}" for i in ids]
    store = click(MENU_STORE_INFO)
    assert store["MsgType"] == "text" and "南山百货" in store["Content"] and "营业时间" in store["Content"]
    agent = click(MENU_CUSTOMER_SERVICE)
    assert agent["MsgType"] == "text" and "人工" in agent["Content"]
    assert count(wx, InboundPush) == 4


def test_menu_clicks_without_content_get_a_text(base_url, emulator, settings_):
    openid = new_openid()
    _, _, r = push(base_url, emulator, event_fields(emulator, openid, "CLICK", MENU_MALL_NEWS), "safe")
    reply = reply_for(settings_, r, "safe", openid)
    assert reply["MsgType"] == "text" and "资讯" in reply["Content"]


def test_news_reply_to_a_message_carries_one_article(base_url, emulator, wx, settings_, app):
    this_weeks_activities(app)
    openid = new_openid()
    _, _, r = push(base_url, emulator, text_fields(emulator, openid, "活动"), "safe")
    reply = reply_for(settings_, r, "safe", openid)
    assert reply["MsgType"] == "news"
    [only] = articles(reply)
    assert only["Title"] == "双十二满 300 减 50"  # the soonest of this week's activities


@pytest.mark.parametrize("words", ["随便说点什么", "hello there", "   "])
def test_unknown_text_gets_the_help_text(base_url, emulator, settings_, words):
    openid = new_openid()
    _, _, r = push(base_url, emulator, text_fields(emulator, openid, words), "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == settings_.HELP_TEXT


def test_asking_for_a_person_queues_a_conversation_at_the_stores_own_desk(base_url, emulator, settings_, wx):
    from service_desk.models import Conversation

    openid = new_openid()
    _, _, r = push(base_url, emulator, text_fields(emulator, openid, "我要投诉"), "safe")
    reply = reply_for(settings_, r, "safe", openid)
    assert reply["MsgType"] == "text" and "人工客服" in reply["Content"]  # no longer WeChat's own system
    with wx.db.unit_of_work() as session:
        conversation = session.scalar(select(Conversation).where(Conversation.openid == openid))
        assert (conversation.status, conversation.source) == ("queued", "keyword")
        linked = session.scalar(select(InboundPush.conversation_id).where(InboundPush.openid == openid))
        assert linked == conversation.id  # the 人工 message is the conversation's first message


@pytest.mark.parametrize("event,key", [("VIEW", "https://example.com/mall"), ("LOCATION", None),
                                       ("CLICK", "NO_SUCH_KEY")])
def test_unknown_events_get_success(base_url, emulator, wx, event, key):
    _, _, r = push(base_url, emulator, event_fields(emulator, new_openid(), event, key), "safe")
    assert r.status_code == 200
    assert r.content == b"success"  # as-is, not encrypted, even in safe mode
    assert count(wx, InboundPush) == 1


def test_other_message_types_get_the_help_text(base_url, emulator, settings_):
    openid = new_openid()
    fields = [("ToUserName", emulator.original_id), ("FromUserName", openid), ("CreateTime", int(time.time())),
              ("MsgType", "image"), ("PicUrl", "http://mmbiz.qpic.cn/x.jpg"), ("MediaId", "media1"),
              ("MsgId", emulator.next_msg_id())]
    _, _, r = push(base_url, emulator, fields, "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == settings_.HELP_TEXT


# -- 8. Answers that come later, through the customer-service API ------------------------------
FOLLOW_UP = "感谢光临二楼美妆柜台！本周到店试妆即送小样一份。"


def _scan_subscribe(base_url, emulator, openid) -> dict:
    out = requests.post(f"{base_url}/_emulator/shopper/scan", json={"openid": openid, "scene": "counter-cosmetics-l2"},
                        timeout=TIMEOUT).json()
    assert out["delivered"], out
    return out


def _cs_messages(emulator, openid) -> list[dict]:
    return [m for m in emulator.shoppers[openid].chat if m["via"] == "customer_service"]


def test_counter_scan_follow_up_arrives_by_customer_service(base_url, emulator, wx, app, run_jobs, settings_):
    load_demo(app, wx)
    openid = next(iter(emulator.shoppers))
    _scan_subscribe(base_url, emulator, openid)
    run_jobs()
    chat = emulator.shoppers[openid].chat
    assert [m["content"] for m in chat if m["via"] == "passive"] == [settings_.WELCOME_TEXT]
    assert [m["content"] for m in _cs_messages(emulator, openid)] == [FOLLOW_UP]
    [follower] = rows(wx, Follower)
    assert follower.first_scene == "counter-cosmetics-l2"


def test_follow_up_is_retried_after_a_transient_error_and_arrives_once(base_url, emulator, wx, app, run_jobs):
    load_demo(app, wx)
    openid = next(iter(emulator.shoppers))
    requests.post(f"{base_url}/_emulator/control/faults",
                  json={"api": "message/custom/send", "errcode": -1, "times": 1}, timeout=TIMEOUT).raise_for_status()
    _scan_subscribe(base_url, emulator, openid)
    run_jobs()
    run_jobs()
    assert [m["content"] for m in _cs_messages(emulator, openid)] == [FOLLOW_UP]
    assert emulator.calls["message/custom/send"] == 2


def test_follow_up_is_not_retried_when_the_window_is_closed(base_url, emulator, wx, app, run_jobs):
    load_demo(app, wx)
    openid = next(iter(emulator.shoppers))
    requests.post(f"{base_url}/_emulator/control/faults",
                  json={"api": "message/custom/send", "errcode": 45015, "times": 1}, timeout=TIMEOUT).raise_for_status()
    _scan_subscribe(base_url, emulator, openid)
    run_jobs()
    run_jobs()
    assert _cs_messages(emulator, openid) == []
    assert emulator.calls["message/custom/send"] == 1
    assert count(wx, Follower) == 1  # the follow itself stands


# -- 9. What the shopper sees when the webhook is slow or gone --------------------------------
def _shopper_text(base_url, openid: str, words: str) -> dict:
    return requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": words},
                         timeout=TIMEOUT).json()


def _seen(emulator, openid: str, text: str) -> list[dict]:
    return [m for m in emulator.shoppers[openid].chat if m["from"] != "user" and m.get("content") == text]


class WebhookRequests:
    """Wraps the POST /wechat view: counts the requests in flight (so a test can wait until the
    server has really finished with attempts the emulator gave up on) and can delay each one."""

    def __init__(self, app, monkeypatch) -> None:
        self.delay = 0.0
        self.started = 0
        self._running = 0
        self._cond = threading.Condition()
        endpoint = "webhook.receive_push"
        view = app.view_functions[endpoint]

        def counted(*args, **kwargs):
            with self._cond:
                self._running += 1
                self.started += 1
            try:
                if self.delay:
                    time.sleep(self.delay)
                return view(*args, **kwargs)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        monkeypatch.setitem(app.view_functions, endpoint, counted)

    def wait_idle(self) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self._running == 0, TIMEOUT), "webhook requests never finished"


@pytest.fixture
def webhook_requests(app, monkeypatch):
    tracker = WebhookRequests(app, monkeypatch)
    yield tracker
    tracker.wait_idle()  # never leave a request running into the next test's clean-up


def test_slow_first_attempt_shopper_still_gets_an_answer(base_url, emulator, wx, settings_, pipeline, monkeypatch,
                                                         run_jobs, webhook_requests):
    """The first attempt outlives the emulator's timeout: WeChat retries, the retry is told
    `success`, and the shopper must still get the reply (or at worst the system notice), once."""
    original = content.help_text
    calls: list[str] = []

    def slow_help(ctx):
        calls.append(ctx.openid)
        time.sleep(settings_.EMULATOR_PUSH_TIMEOUT + 0.5)
        return original(ctx)

    openid = next(iter(emulator.shoppers))
    followed = requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid}, timeout=TIMEOUT)
    assert followed.json()["delivered"]
    run_jobs()  # the follow's own jobs are done before the slow part starts
    use_handler(monkeypatch, pipeline, "help_text", slow_help)
    out = _shopper_text(base_url, openid, "你好")
    webhook_requests.wait_idle()
    assert len(out["attempts"]) >= 2, out  # the emulator did retry
    assert out["attempts"][0]["result"] == "timeout"
    run_jobs()
    replies = _seen(emulator, openid, settings_.HELP_TEXT)
    notices = _seen(emulator, openid, UNAVAILABLE)
    assert len(replies) + len(notices) == 1, emulator.shoppers[openid].chat
    assert calls == [openid]
    assert count(wx, InboundPush, InboundPush.msg_type == "text") == 1


def test_slow_menu_news_still_reaches_the_shopper(base_url, emulator, wx, app, settings_, pipeline, monkeypatch,
                                                 run_jobs, webhook_requests):
    """A news reply that came too late goes by customer service, as the one article it allows."""
    this_weeks_activities(app)
    original = content.activities

    def slow_activities(ctx):
        time.sleep(settings_.EMULATOR_PUSH_TIMEOUT + 0.5)
        return original(ctx)

    openid = next(iter(emulator.shoppers))
    assert requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid},
                         timeout=TIMEOUT).json()["delivered"]
    run_jobs()
    use_handler(monkeypatch, pipeline, "activities", slow_activities)
    out = requests.post(f"{base_url}/_emulator/shopper/click", json={"openid": openid, "key": MENU_ACTIVITIES},
                        timeout=TIMEOUT).json()
    webhook_requests.wait_idle()
    assert out["attempts"][0]["result"] == "timeout"
    run_jobs()
    news = [m for m in emulator.shoppers[openid].chat if m["kind"] == "news"]
    notices = _seen(emulator, openid, UNAVAILABLE)
    assert len(news) + len(notices) == 1, emulator.shoppers[openid].chat
    if news:
        titles = [a["title"] for a in news[0]["articles"]]
        assert titles[0] == "双十二满 300 减 50"
        assert len(titles) == (1 if news[0]["via"] == "customer_service" else 3)


def test_webhook_slower_than_every_attempt_shows_the_notice(base_url, emulator, wx, settings_, webhook_requests):
    """Every attempt outlives the timeout: three attempts, then the system notice; the push is
    still handled once on the server."""
    webhook_requests.delay = settings_.EMULATOR_PUSH_TIMEOUT + 0.3
    openid = next(iter(emulator.shoppers))
    out = _shopper_text(base_url, openid, "你好")
    webhook_requests.wait_idle()
    assert not out["delivered"]
    assert [a.get("result") for a in out["attempts"]] == ["timeout"] * 3
    assert webhook_requests.started == 3
    assert len(_seen(emulator, openid, UNAVAILABLE)) == 1
    assert _seen(emulator, openid, settings_.HELP_TEXT) == []
    assert count(wx, InboundPush) == 1


def test_dead_webhook_shows_the_notice_after_three_attempts(base_url, emulator, wx, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/wechat"  # closed when the block ends
    monkeypatch.setattr(emulator, "push_url", emulator.push_url)  # put back after the test
    requests.post(f"{base_url}/_emulator/control/push-url", json={"url": dead}, timeout=TIMEOUT).raise_for_status()
    openid = next(iter(emulator.shoppers))
    out = _shopper_text(base_url, openid, "你好")
    assert not out["delivered"]
    assert [a["attempt"] for a in out["attempts"]] == [1, 2, 3]
    assert all(a.get("result") == "connection refused" for a in out["attempts"])
    chat = emulator.shoppers[openid].chat
    assert chat[-1]["content"] == UNAVAILABLE and chat[-1]["from"] == "system"
    assert count(wx, InboundPush) == 0


def test_server_error_every_time_shows_the_notice(base_url, emulator, wx, pipeline, monkeypatch):
    def broken(ctx):
        raise RuntimeError("always down")

    use_handler(monkeypatch, pipeline, "help_text", broken)
    openid = next(iter(emulator.shoppers))
    out = _shopper_text(base_url, openid, "你好")
    assert [a.get("status") for a in out["attempts"]] == [500, 500, 500]
    assert len(_seen(emulator, openid, UNAVAILABLE)) == 1
    assert count(wx, InboundPush) == 0
