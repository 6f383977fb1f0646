"""What a message to an open conversation costs the database, beside a plain push.

A plain push (the help text) runs no ORM session: its record is one INSERT, linked to nothing.
A message to an open conversation reads the conversation, notes the time and writes its record
in the same transaction; the record's INSERT links it (the subquery), so nothing is stored twice.
The counts are printed (`-s`); the assertions are what a reader of the conversation would notice.
"""
from __future__ import annotations

import time

from sqlalchemy import select

from service_desk import intake
from service_desk.models import Conversation
from tests.integration.members_helpers import uow
from tests.integration.test_notification_statements import show, statements
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.models import InboundPush


def _push(app, emulator, openid: str, words: str) -> int:
    fields = [("ToUserName", emulator.original_id), ("FromUserName", openid), ("CreateTime", int(time.time())),
              ("MsgType", "text"), ("Content", words), ("MsgId", emulator.next_msg_id())]
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    return app.test_client().post("/wechat", query_string=query, data=body).status_code


def test_a_message_to_an_open_conversation_is_one_transaction_and_one_record(app, emulator):
    with uow(app):
        intake.ask_for_person("oDeskStatements", "keyword")
    with statements(app) as plain:
        assert _push(app, emulator, "oSomeoneElse", "你好") == 200
    with statements(app) as desk:
        assert _push(app, emulator, "oDeskStatements", "我的订单还没到") == 200
    show("plain push", plain)
    show("message to an open conversation", desk)
    inserts = [sql for sql in desk if sql.startswith("INSERT INTO inbound_pushes")]
    assert len(inserts) == 1 and "desk_conversations" in inserts[0]  # linked by the INSERT itself
    assert not [sql for sql in desk if sql.startswith("INSERT INTO desk_messages")]  # not stored twice
    assert len(plain) <= 1  # the plain push: its record only (0 here when it takes the raw psycopg path)
    with uow(app) as session:
        conversation = session.scalar(select(Conversation).where(Conversation.openid == "oDeskStatements"))
        linked = session.scalars(select(InboundPush.content).where(InboundPush.conversation_id == conversation.id)).all()
        assert linked == ["我的订单还没到"]
        assert session.scalar(select(InboundPush.conversation_id).where(InboundPush.openid == "oSomeoneElse")) is None
