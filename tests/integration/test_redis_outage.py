"""Redis away (bench/fault_runs.py found both): pushes are still answered and recorded once, and a
payment notification whose after-commit job could not be queued is still acknowledged, once.

Redis is made to refuse connections by pointing the app's client at a closed port for the test
(the real server stays up for the rest of the suite); the fault run stops the real one.
"""
from __future__ import annotations

import logging

import pytest
import redis as redis_lib

from tests.e2e.test_webhook import count, new_openid, post, push, reply_for, text_fields
from tests.integration.test_pay_notify import (  # noqa: F401,F811 (fixtures)
    envelope, keys, make_order, make_shopper, order_row, pay, payment_entries, send, transaction)
from wx_service.ground.models import InboundPush


@pytest.fixture
def redis_down(app, monkeypatch):
    """Every Redis call of the app fails as it does when the server is stopped."""
    wx = app.extensions["wx"]
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    pipeline = app.extensions["wx_webhook"]
    monkeypatch.setattr(pipeline.dedup, "redis", dead)
    monkeypatch.setattr(pipeline.dedup._scripts, "redis", dead, raising=False)

    def refuse(*_args, **_kwargs):
        raise redis_lib.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(pipeline.dedup._scripts, "run", refuse)
    monkeypatch.setattr(pipeline.nonces, "redis", dead)
    queue = wx.queue
    monkeypatch.setattr(queue, "enqueue", refuse)
    monkeypatch.setattr(queue, "enqueue_in", refuse)
    return dead


def test_a_push_is_answered_and_recorded_once_while_redis_is_down(app, base_url, emulator, redis_down, caplog):
    openid = new_openid()
    caplog.set_level(logging.INFO)
    fields = text_fields(emulator, openid, "帮助")
    query, body, first = push(base_url, emulator, fields)
    assert first.status_code == 200
    reply = reply_for(app.extensions["wx"].settings, first, "safe", openid)
    assert reply["MsgType"] == "text"
    # WeChat's retry of the same push: the database row answers it, the handler does not run again.
    again = post(base_url, query, body)
    assert again.status_code == 200 and again.content == first.content
    assert count(app.extensions["wx"], InboundPush, InboundPush.openid == openid) == 1
    assert any("push dedup without Redis" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


def test_a_notification_whose_job_cannot_be_queued_is_acknowledged_once(app, base_url, pay, keys, redis_down, caplog):
    make_shopper(app, "o-redis-down")
    make_order(app, "T20261203000009", 5_000)
    body = envelope(transaction("T20261203000009", 5_000, openid="o-redis-down"), "EV-R1")
    caplog.set_level(logging.INFO)

    assert send(base_url, keys, body).status_code == 204  # stored: acknowledged, whatever Redis says
    assert send(base_url, keys, body).status_code == 204  # WeChat's retry changes nothing
    assert order_row(app, "T20261203000009").state == "PAID"
    assert len(payment_entries(app, "T20261203000009")) == 1
    [failed] = [r for r in caplog.records if "after-commit action failed" in r.getMessage()]
    assert failed.action == "queue members.jobs.sync_card"
    assert not [r for r in caplog.records if r.exc_info]


def test_a_shopper_talking_to_an_agent_still_reaches_the_conversation_while_redis_is_down(
        app, base_url, emulator, caplog, monkeypatch, request):
    """The claim cannot say whether the shopper is in a conversation: the desk asks the database,
    so the message joins the conversation (not the help text), and the console's event that could
    not be published is logged, never a failed push."""
    from sqlalchemy import select

    from service_desk import intake
    from service_desk.models import Conversation
    from tests.integration.members_helpers import uow

    openid = new_openid()
    with uow(app):
        intake.ask_for_person(openid, "keyword")
    request.getfixturevalue("redis_down")
    wx = app.extensions["wx"]
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(wx, "redis", dead, raising=False)
    caplog.set_level(logging.INFO)
    _, _, answered = push(base_url, emulator, text_fields(emulator, openid, "帮助"))
    assert answered.status_code == 200 and answered.content == b"success"  # no bot reply: the agent answers
    with uow(app) as session:
        conversation = session.scalar(select(Conversation).where(Conversation.openid == openid))
        linked = session.scalar(select(InboundPush.conversation_id).where(InboundPush.content == "帮助"))
    assert linked == conversation.id
    assert any("after-commit action failed" in r.getMessage() for r in caplog.records)
