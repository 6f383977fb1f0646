"""What the store says in a conversation: agents' answers (customer-service messages inside
WeChat's window, a template message outside it), private notes, the rating menu on resolve, and
what the delivery job (jobs.deliver) carries to WeChat. Flushes, never commits.

Nothing an agent typed is lost: an answer is a row before it is a job, the job records WeChat's
verdict on that row (sent, or failed with WeChat's errcode and errmsg), and a failed answer can be
retried or sent as a template. A double-clicked send stores one row (`client_key`).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from members.models import Follower
from service_desk import access, events, service, windows
from service_desk.exceptions import BadMessage, NotYours, WindowClosed
from service_desk.models import ASSIGNED, BOT_ANSWER, EVENT, FAILED, NOTE, OUT, PENDING, SENDING, SENT, Agent, Conversation, Message
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, services
from wx_service.ground.models import InboundPush

log = logging.getLogger(__name__)

# Messages that spend the customer-service budget: answers and the desk's own sends, once queued.
_SPENDING = (PENDING, SENDING, SENT)
CSAT_OPTIONS = ((5, "5分 非常满意"), (4, "4分 满意"), (3, "3分 一般"), (2, "2分 不满意"), (1, "1分 很不满意"))


def window_of(conversation: Conversation, now: datetime | None = None) -> windows.Window:
    """WeChat's customer-service window for the conversation's shopper, as the desk knows it."""
    now = now or utcnow()
    openid = conversation.openid
    # Our clock on both sides (when the push arrived, when the answer was queued): WeChat's
    # CreateTime has whole seconds only, and answers within that second would count wrongly.
    last_message = db.session.scalar(select(func.max(InboundPush.received_at)).where(
        InboundPush.openid == openid, InboundPush.msg_type != "event"))
    last_event = db.session.execute(select(InboundPush.event, InboundPush.received_at).where(
        InboundPush.openid == openid, InboundPush.msg_type == "event",
        InboundPush.event.in_(tuple(windows.WINDOW_EVENTS))).order_by(InboundPush.id.desc()).limit(1)).first()
    sent = db.session.scalars(select(Message.created_at).join(Conversation, Conversation.id == Message.conversation_id)
                              .where(Conversation.openid == openid, Message.direction.in_((OUT, BOT_ANSWER)),
                                     Message.kind != "template", Message.status.in_(_SPENDING))).all()
    following = True
    if conversation.channel == "oa":
        follower = db.session.scalar(select(Follower.subscribed).where(Follower.openid == openid))
        following = follower is not False  # unknown (no row yet) counts as following
    return windows.current(last_message, (last_event[0], last_event[1]) if last_event else None,
                           windows.SentCounter(list(sent)), now, following=following)


def fallback_available() -> bool:
    return bool(services().settings.DESK_FALLBACK_TEMPLATE_ID)


def _owned(agent: Agent, conversation_id: int) -> Conversation:
    conversation = access.conversation_for(agent, conversation_id)
    if conversation.status != ASSIGNED or conversation.assignee_id != agent.id:
        raise NotYours("only the agent this conversation is assigned to can do that; take it first")
    return conversation


def _checked_body(body: str) -> str:
    body = (body or "").strip()
    limit = services().settings.DESK_MAX_MESSAGE
    if not body:
        raise BadMessage("the message is empty")
    if len(body) > limit:
        raise BadMessage(f"the message is {len(body)} characters; WeChat takes at most {limit}")
    return body


def _existing(conversation_id: int, client_key: str | None) -> Message | None:
    if not client_key:
        return None
    return db.session.scalar(select(Message).where(Message.conversation_id == conversation_id,
                                                   Message.client_key == client_key))


def _store(message: Message) -> Message:
    """Insert, or return the row a retried request already stored under the same client key."""
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        found = _existing(message.conversation_id, message.client_key)
        if found is None:
            raise
        return found
    return message


def answer(agent: Agent, conversation_id: int, body: str, client_key: str | None = None, *,
           kind: str = "text", media_id: str = "", now: datetime | None = None) -> Message:
    """The agent's answer, queued as a customer-service message. Refused (WindowClosed, nothing
    stored) when WeChat's window is shut: the console then offers the template instead."""
    conversation = _owned(agent, conversation_id)
    if kind == "text":
        body = _checked_body(body)
    elif kind != "image" or not media_id:
        raise BadMessage("an answer is a text or an uploaded image")
    found = _existing(conversation.id, client_key)
    if found is not None:
        return found
    window = window_of(conversation, now)
    if not window.open:
        raise WindowClosed(window.reason, fallback_available())
    now = now or utcnow()
    message = _store(Message(conversation_id=conversation.id, direction=OUT, kind=kind, body=body, media_id=media_id,
                             agent_id=agent.id, client_key=client_key, status=PENDING, created_at=now))
    if message.status == PENDING and message.attempts == 0:
        if conversation.first_response_at is None:
            conversation.first_response_at = now
        conversation.read_at = now
        db.session.flush()
        enqueue_after_commit("service_desk.jobs.deliver", message_id=message.id)
        events.publish_after_commit("answer", conversation, message=message.id)
    return message


def answer_as_template(agent: Agent, conversation_id: int, body: str, client_key: str | None = None,
                       now: datetime | None = None) -> Message:
    """Outside the window: the answer goes as the configured template message (never silently dropped)."""
    conversation = _owned(agent, conversation_id)
    body = _checked_body(body)
    if not fallback_available():
        raise WindowClosed("no template is configured for answers outside WeChat's window "
                           "(DESK_FALLBACK_TEMPLATE_ID)", False)
    found = _existing(conversation.id, client_key)
    if found is not None:
        return found
    now = now or utcnow()
    message = _store(Message(conversation_id=conversation.id, direction=OUT, kind="template", body=body,
                             agent_id=agent.id, client_key=client_key, status=PENDING, created_at=now))
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    db.session.flush()
    enqueue_after_commit("service_desk.jobs.deliver", message_id=message.id)
    events.publish_after_commit("answer", conversation, message=message.id)
    return message


def retry(agent: Agent, message_id: int, now: datetime | None = None) -> Message:
    """Send a refused answer again (after the shopper wrote again, say): same row, same text."""
    message = db.session.get(Message, message_id)
    if message is None or message.direction != OUT:
        raise BadMessage(f"no answer {message_id}")
    conversation = _owned(agent, message.conversation_id)
    if message.status != FAILED:
        raise BadMessage("only an answer WeChat refused can be sent again")
    if message.kind != "template":
        window = window_of(conversation, now)
        if not window.open:
            raise WindowClosed(window.reason, fallback_available())
    db.session.execute(update(Message).where(Message.id == message.id, Message.status == FAILED)
                       .values(status=PENDING, wechat_errcode=None, wechat_errmsg=""))
    enqueue_after_commit("service_desk.jobs.deliver", message_id=message.id)
    events.publish_after_commit("answer", conversation, message=message.id)
    return db.session.get(Message, message.id, populate_existing=True)


def note(agent: Agent, conversation_id: int, body: str, now: datetime | None = None) -> Message:
    """A private note: agents see it, the shopper never does."""
    conversation = access.conversation_for(agent, conversation_id)
    body = (body or "").strip()
    if not body or len(body) > 4000:
        raise BadMessage("a note is 1 to 4,000 characters")
    message = Message(conversation_id=conversation.id, direction=NOTE, body=body, agent_id=agent.id,
                      status=SENT, created_at=now or utcnow())
    db.session.add(message)
    db.session.flush()
    events.publish_after_commit("note", conversation, message=message.id)
    return message


def log_event(conversation: Conversation, text: str, agent_id: int | None = None) -> None:
    """A line in the conversation's history (queued, offered, transferred, resolved)."""
    db.session.add(Message(conversation_id=conversation.id, direction=EVENT, body=text, agent_id=agent_id,
                           status=SENT, created_at=utcnow()))


def greet(conversation: Conversation, text: str) -> Message:
    """The desk's own customer-service message (the mini-program greeting), as a bot answer."""
    message = Message(conversation_id=conversation.id, direction=BOT_ANSWER, body=text, status=PENDING,
                      created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    enqueue_after_commit("service_desk.jobs.deliver", message_id=message.id)
    return message


def resolve(agent: Agent, conversation_id: int, now: datetime | None = None) -> Conversation:
    """The owner closes the conversation; the shopper gets the one-tap rating if the window allows."""
    _owned(agent, conversation_id)
    conversation = service.resolve(conversation_id, agent.id, now)
    log_event(conversation, "resolved", agent.id)
    if window_of(conversation, now).open:
        menu = Message(conversation_id=conversation.id, direction=BOT_ANSWER, kind="msgmenu",
                       body="请为本次服务评分", status=PENDING, created_at=now or utcnow())
        db.session.add(menu)
        db.session.flush()
        enqueue_after_commit("service_desk.jobs.deliver", message_id=menu.id)
    else:
        log_event(conversation, "rating not sent: WeChat's window is shut")
    db.session.flush()
    service.offer_waiting(now)  # the agent has room again: the queue moves
    return conversation
