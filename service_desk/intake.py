"""The shopper's side of the desk: asking for a person, the FAQ's first answers, the queue, and
the one-tap rating. Called by the WeChat handlers; flushes, never commits.

A conversation starts in `bot`: the FAQ answers what it can. Asking for a person (转人工, 人工,
客服), or a second message the FAQ cannot answer, puts it in the queue and offers it to an agent.
Every later message only wakes the console: agents answer through the customer-service API.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select, true, update

from members import identity
from service_desk import events, faq, outbound, service
from service_desk.models import BOT, BOT_ANSWER, OFFERED, ONLINE, QUEUED, RESOLVED, Agent, Conversation, Message
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services

SHANGHAI = ZoneInfo("Asia/Shanghai")
ASK_FOR_PERSON = re.compile(r"转人工|人工|客服|真人")
MAX_BOT_MISSES = 2  # the second message the FAQ cannot answer goes to a person
CSAT_MENU_ID = re.compile(r"^csat:(\d{1,12}):([1-5])$")

GREETING = "您好，请问有什么可以帮您？您可以直接描述问题；需要人工服务请回复“转人工”。"
NOT_FOUND = "抱歉，暂时没有找到答案。请换个说法试试，或回复“转人工”联系人工客服。"
FAQ_FOOTER = "\n\n（如需人工服务，请回复“转人工”）"


# A Core statement on the table, built once: the ORM's bulk-UPDATE machinery costs more than the
# statement itself on this path, which every message to a held conversation takes.
_TABLE = Conversation.__table__
_NOTE_MESSAGE = (update(_TABLE).where(_TABLE.c.openid == bindparam("sender"), _TABLE.c.status != RESOLVED)
                 .values(last_inbound_at=bindparam("now"))
                 .returning(_TABLE.c.id, _TABLE.c.status, _TABLE.c.team_id, _TABLE.c.assignee_id))


@dataclass(frozen=True)
class Answer:
    """What the webhook replies to the shopper's push: a text, or nothing (`success`)."""

    text: str | None = None


def _hours() -> tuple[time, time]:
    start, end = services().settings.DESK_HOURS.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), (time(23, 59, 59) if h2 == 24 else time(h2, m2))


def within_hours(now: datetime) -> bool:
    """Is the desk staffed at `now` (store time)?"""
    start, end = _hours()
    local = now.astimezone(SHANGHAI).time()
    return start <= local < end


def hours_text() -> str:
    return services().settings.DESK_HOURS.replace("-", "–")


def start(openid: str, source: str, *, context: str = "", channel: str = "oa",
          now: datetime | None = None) -> Conversation:
    """The shopper's open conversation (a new one, tagged with where it came from, if none is
    open). A `counter:<code>` context sends it to that counter's team."""
    team_code = context.split(":", 1)[1] if context.startswith("counter:") else None
    member = identity.member_for_openid("mp" if channel == "mp" else "oa", openid)
    conversation = service.open_conversation(openid, source, team_code=team_code, context=context,
                                             member_id=member.id if member else None)
    if conversation.channel != channel and conversation.status == BOT:
        conversation.channel = channel
    conversation.last_inbound_at = now or utcnow()
    db.session.flush()
    events.mark_open_after_commit(openid, conversation.id)
    events.publish_after_commit("opened", conversation, source=source)
    return conversation


def greet_after_entry(openid: str) -> None:
    """The mini-program's contact entry gets no passive reply: greet by customer-service message
    (its 1-minute window allows two), unless someone is already answering."""
    conversation = service.open_conversation_of(openid)
    if conversation is not None and conversation.status == BOT:
        outbound.greet(conversation, GREETING)


def ask_for_person(openid: str, source: str, *, context: str = "", now: datetime | None = None) -> Answer:
    """转人工: queue the conversation and offer it to an agent; tell the shopper what happens next."""
    now = now or utcnow()
    conversation = start(openid, source, context=context, now=now)
    return Answer(_to_queue(conversation, now))


def _to_queue(conversation: Conversation, now: datetime) -> str:
    if conversation.status == BOT:
        service.queue(conversation.id, now)
        service.offer_next(conversation.id, now)
        conversation = db.session.get(Conversation, conversation.id, populate_existing=True)
    return _queue_text(conversation, now)


def _queue_text(conversation: Conversation, now: datetime) -> str:
    if conversation.status not in (QUEUED, OFFERED):
        return "客服正在为您服务，请直接发送您的问题。"
    if conversation.status == OFFERED:  # someone is on, whatever the hours say
        return "已为您接通人工客服，请稍候，客服马上回复您。"
    online = select(func.count()).select_from(Agent).where(Agent.status == ONLINE)
    if conversation.team_id is not None:
        online = online.where(Agent.team_id == conversation.team_id)
    if not within_hours(now) or not db.session.scalar(online):
        return (f"人工客服的服务时间为每天 {hours_text()}，现在没有客服在线。您的留言已记录，"
                "客服上线后会第一时间回复您。")
    ahead = db.session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.status.in_((QUEUED, OFFERED)), Conversation.id != conversation.id,
        Conversation.queued_at <= conversation.queued_at,
        (Conversation.team_id == conversation.team_id) if conversation.team_id is not None else true()))
    return f"已为您转接人工客服，您前面还有 {ahead} 位，请稍候。"


def on_message(openid: str, *, text: str, msg_type: str, now: datetime | None = None) -> Answer | None:
    """A message from a shopper who may be in a conversation. None: they are not (the caller
    routes the message as usual). The message itself is stored by the webhook's own record,
    linked to the conversation there."""
    now = now or utcnow()
    # One statement finds the open conversation and notes the message: most messages go to a
    # conversation a person already holds, and need nothing more than the console's event.
    found = db.session.execute(_NOTE_MESSAGE, {"sender": openid, "now": now}).first()
    if found is None:
        return None
    events.publish_after_commit("message", found)
    if found.status != BOT:
        return Answer(None)
    conversation = db.session.get(Conversation, found.id, populate_existing=True)
    if msg_type == "text" and ASK_FOR_PERSON.search(text):
        return Answer(_to_queue(conversation, now))
    entry = faq.answer_for(text) if msg_type == "text" else None
    if entry is not None:
        db.session.add(Message(conversation_id=conversation.id, direction=BOT_ANSWER, body=entry.answer,
                               status="sent", created_at=now, sent_at=now))
        db.session.flush()
        return Answer(entry.answer + FAQ_FOOTER)
    conversation.bot_misses += 1
    db.session.flush()
    if conversation.bot_misses >= MAX_BOT_MISSES:
        return Answer(_to_queue(conversation, now))
    return Answer(NOT_FOUND)


def rate(openid: str, menu_id: str, now: datetime | None = None) -> bool:
    """The shopper tapped a rating in the one-tap menu sent on resolve. Counted once, only for
    their own resolved conversation; False when it was not (a forged or repeated tap)."""
    found = CSAT_MENU_ID.match(menu_id or "")
    if not found:
        return False
    conversation_id, score = int(found.group(1)), int(found.group(2))
    done = db.session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.openid == openid, Conversation.status == RESOLVED,
        Conversation.csat.is_(None)).values(csat=score, csat_at=now or utcnow())).rowcount
    if done:
        conversation = db.session.get(Conversation, conversation_id, populate_existing=True)
        events.publish_after_commit("rated", conversation, score=score)
    return bool(done)

