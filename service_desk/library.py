"""What staff keep for the desk as data: the FAQ that answers first, the canned replies agents
insert by shortcut, and the search over past conversations. Flushes, never commits.

Canned replies are shared (everyone's, anyone may edit them) or one agent's own (only theirs:
another agent's own reply answers "not found", as a conversation of another team does). Where an
agent's own shortcut is also a shared one, their own wins.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from service_desk import access
from service_desk.exceptions import BadEntry, UnknownEntry
from service_desk.faq import BadPattern, check_pattern
from service_desk.models import BOT_ANSWER, NOTE, OUT, Agent, CannedReply, Conversation, FaqEntry, Message
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.models import InboundPush

__all__ = ["BadEntry", "BadPattern", "UnknownEntry", "list_faq", "save_faq", "delete_faq", "canned_for",
           "save_canned", "delete_canned", "expand", "search"]

MAX_QUESTION, MAX_ANSWER, MAX_BODY = 128, 2000, 2000
SHORTCUT = re.compile(r"/[a-z0-9_-]{1,31}")
SEARCH_MIN, SEARCH_MAX, SNIPPET = 2, 100, 30


# -- FAQ -------------------------------------------------------------------------------------------

def list_faq() -> list[FaqEntry]:
    """Every entry, in the order the FAQ tries them (priority, then the oldest)."""
    return list(db.session.scalars(select(FaqEntry).order_by(FaqEntry.priority.desc(), FaqEntry.id)))


def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        raise BadEntry(f"{what} is 1 to {limit} characters")
    return value


def save_faq(entry_id: int | None, *, question: str, pattern: str, is_regex: bool, answer: str,
             priority: int, active: bool) -> FaqEntry:
    """Create (entry_id None) or change an entry. BadPattern for a pattern the FAQ cannot use,
    BadEntry for an empty or oversized question or answer, UnknownEntry for an id that is gone."""
    question = _text(question, "a question", MAX_QUESTION)
    answer = _text(answer, "an answer", MAX_ANSWER)
    pattern = check_pattern(pattern or "", bool(is_regex))
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        raise BadEntry("the priority is a whole number from -1000 to 1000")
    if entry_id is None:
        entry = FaqEntry()
        db.session.add(entry)
    else:
        entry = db.session.get(FaqEntry, entry_id)
        if entry is None:
            raise UnknownEntry(f"no FAQ entry {entry_id}")
    entry.question, entry.pattern, entry.is_regex, entry.answer = question, pattern, bool(is_regex), answer
    entry.priority, entry.active, entry.updated_at = priority, bool(active), utcnow()
    db.session.flush()
    return entry


def delete_faq(entry_id: int) -> None:
    """Remove an entry (answers already given stay in their conversations as text)."""
    entry = db.session.get(FaqEntry, entry_id)
    if entry is None:
        raise UnknownEntry(f"no FAQ entry {entry_id}")
    db.session.delete(entry)
    db.session.flush()


# -- canned replies --------------------------------------------------------------------------------

def canned_for(agent: Agent) -> list[CannedReply]:
    """The shared replies and the agent's own, by shortcut; the agent's own first where both
    have the same shortcut (it is the one `expand` uses)."""
    replies = db.session.scalars(select(CannedReply).where(
        or_(CannedReply.owner_id.is_(None), CannedReply.owner_id == agent.id))).all()
    return sorted(replies, key=lambda r: (r.shortcut, r.owner_id is None, r.id))


def _editable(agent: Agent, reply_id: int) -> CannedReply:
    reply = db.session.get(CannedReply, reply_id)
    if reply is None or reply.owner_id not in (None, agent.id):
        raise UnknownEntry(f"no canned reply {reply_id}")
    return reply


def save_canned(agent: Agent, reply_id: int | None, *, shortcut: str, body: str, shared: bool) -> CannedReply:
    """Create (reply_id None) or change a canned reply. BadEntry for a malformed shortcut, an empty
    or oversized body, or a shortcut already used (among the shared ones, or the agent's own);
    UnknownEntry for another agent's own reply or one that is gone."""
    shortcut = (shortcut or "").strip().lower()
    if not SHORTCUT.fullmatch(shortcut):
        raise BadEntry("a shortcut is / and 1 to 31 of a-z, 0-9, _ and -, e.g. /hours")
    body = _text(body, "a reply", MAX_BODY)
    owner_id = None if shared else agent.id
    reply = CannedReply() if reply_id is None else _editable(agent, reply_id)
    clash = select(CannedReply.id).where(
        CannedReply.shortcut == shortcut,
        CannedReply.owner_id.is_(None) if owner_id is None else CannedReply.owner_id == owner_id)
    if reply.id is not None:
        clash = clash.where(CannedReply.id != reply.id)
    if db.session.scalar(clash) is not None:
        raise BadEntry("shortcut already used")
    try:
        with db.session.begin_nested():  # two agents saving the same shortcut at once: the index decides
            reply.shortcut, reply.body, reply.owner_id = shortcut, body, owner_id
            db.session.add(reply)
    except IntegrityError as exc:
        raise BadEntry("shortcut already used") from exc
    return reply


def delete_canned(agent: Agent, reply_id: int) -> None:
    """Remove a shared reply or one of the agent's own."""
    db.session.delete(_editable(agent, reply_id))
    db.session.flush()


def expand(agent: Agent, shortcut: str) -> str | None:
    """The text a shortcut stands for, for this agent (their own before the shared one)."""
    shortcut = (shortcut or "").strip().lower()
    body = db.session.scalar(select(CannedReply.body).where(
        CannedReply.shortcut == shortcut, or_(CannedReply.owner_id.is_(None), CannedReply.owner_id == agent.id))
        .order_by(CannedReply.owner_id.is_(None)).limit(1))
    return body


# -- search ----------------------------------------------------------------------------------------

def _like(query: str) -> str:
    """A LIKE pattern matching `query` literally: %, _ and the escape itself mean themselves."""
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _snippet(text: str, query: str) -> str:
    at = text.lower().find(query.lower())
    if at < 0:
        return text[: 2 * SNIPPET + len(query)]
    start, end = max(0, at - SNIPPET), min(len(text), at + len(query) + SNIPPET)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def search(agent: Agent, query: str, limit: int = 50) -> list[dict[str, object]]:
    """Past conversations the agent may see where the shopper or the store said `query` (any
    case, taken literally): newest first. BadEntry for a query under 2 or over 100 characters."""
    query = (query or "").strip()
    if not SEARCH_MIN <= len(query) <= SEARCH_MAX:
        raise BadEntry(f"search for {SEARCH_MIN} to {SEARCH_MAX} characters")
    if "\x00" in query:
        raise BadEntry("a search cannot contain a NUL character")
    limit = max(1, min(int(limit), 200))
    pattern = _like(query)
    pushes = db.session.execute(
        select(InboundPush.id, InboundPush.conversation_id, InboundPush.received_at, InboundPush.content,
               Conversation.status)
        .join(Conversation, Conversation.id == InboundPush.conversation_id)
        .where(access.visible_to(agent), InboundPush.msg_type.in_(("text", "voice")),
               func.lower(InboundPush.content).like(pattern.lower(), escape="\\"))
        .order_by(InboundPush.received_at.desc()).limit(limit)).all()
    messages = db.session.execute(
        select(Message.id, Message.conversation_id, Message.created_at, Message.body, Message.direction,
               Conversation.status)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(access.visible_to(agent), Message.direction.in_((OUT, NOTE, BOT_ANSWER)),
               func.lower(Message.body).like(pattern.lower(), escape="\\"))
        .order_by(Message.created_at.desc()).limit(limit)).all()
    hits: list[tuple[datetime, dict[str, object]]] = []
    for push_id, conversation_id, at, content, status in pushes:
        hits.append((at, {"conversation_id": conversation_id, "at": at.isoformat(), "direction": "in",
                          "snippet": _snippet(content, query), "status": status, "push_id": push_id,
                          "message_id": None}))
    for message_id, conversation_id, at, body, direction, status in messages:
        hits.append((at, {"conversation_id": conversation_id, "at": at.isoformat(), "direction": direction,
                          "snippet": _snippet(body, query), "status": status, "push_id": None,
                          "message_id": message_id}))
    hits.sort(key=lambda hit: hit[0], reverse=True)
    return [hit for _at, hit in hits[:limit]]
