"""Helpers for the desk's read-side tests: conversations and shopper messages at fixed times,
written straight to the tables (no webhook round trip needed to read them back)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from service_desk.models import ASSIGNED, OFFERED, QUEUED, RESOLVED, Agent, Conversation, Message
from tests.integration.members_helpers import uow
from wx_service.ground.models import InboundPush

T0 = datetime(2024, 3, 10, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
_keys = itertools.count(1)


def conv(app, openid: str, *, team_id: int | None, status: str = QUEUED, assignee: int | None = None,
         created_at: datetime = T0, queued_at: datetime | None = None, resolved_at: datetime | None = None,
         first_response_at: datetime | None = None, read_at: datetime | None = None, csat: int | None = None,
         member_id: int | None = None, context: str = "", source: str = "menu") -> int:
    if queued_at is None and status in (QUEUED, OFFERED, ASSIGNED, RESOLVED):
        queued_at = created_at
    with uow(app) as session:
        conversation = Conversation(
            openid=openid, team_id=team_id, status=status, assignee_id=assignee, created_at=created_at,
            queued_at=queued_at, resolved_at=resolved_at, first_response_at=first_response_at, read_at=read_at,
            csat=csat, member_id=member_id, context=context, source=source,
            offered_at=queued_at if status == OFFERED else None,
            assigned_at=queued_at if status in (ASSIGNED, RESOLVED) and assignee else None)
        session.add(conversation)
        session.flush()
        return conversation.id


def push(app, conversation_id: int | None, openid: str, content: str, at: datetime, *, msg_type: str = "text",
         media_id: str = "", response: str = "success") -> int:
    with uow(app) as session:
        row = InboundPush(appid="wxtest", dedup_key=f"test-{next(_keys)}", openid=openid, msg_type=msg_type,
                          content=content, media_id=media_id, response=response,
                          created_at_wechat=int(at.timestamp()), received_at=at, conversation_id=conversation_id)
        session.add(row)
        session.flush()
        return row.id


def say(app, conversation_id: int, direction: str, body: str, at: datetime, *, agent_id: int | None = None,
        kind: str = "text", status: str = "sent", errcode: int | None = None, errmsg: str = "") -> int:
    with uow(app) as session:
        message = Message(conversation_id=conversation_id, direction=direction, kind=kind, body=body,
                          agent_id=agent_id, status=status, wechat_errcode=errcode, wechat_errmsg=errmsg,
                          created_at=at)
        session.add(message)
        session.flush()
        return message.id


def agent(session, agent_id: int) -> Agent:
    return session.get(Agent, agent_id)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
