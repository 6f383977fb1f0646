"""STUB (deskui branch): FAQ entries, canned replies and search, minimal. The read-side branch's
version replaces this file at merge; names and errors agreed (BadEntry here, faq.BadPattern)."""
from __future__ import annotations

from sqlalchemy import or_, select

from service_desk import access, faq
from service_desk.exceptions import DeskError
from service_desk.models import Agent, CannedReply, Conversation, FaqEntry, Message
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.models import InboundPush


class BadEntry(DeskError):
    """An FAQ entry or canned reply that cannot be saved as typed."""


def _faq_dict(e: FaqEntry) -> dict[str, object]:
    return {"id": e.id, "question": e.question, "pattern": e.pattern, "is_regex": e.is_regex, "answer": e.answer,
            "priority": e.priority, "active": e.active}


def list_faq() -> list[dict[str, object]]:
    return [_faq_dict(e) for e in db.session.scalars(select(FaqEntry).order_by(FaqEntry.priority.desc(), FaqEntry.id))]


def save_faq(entry_id: int | None, *, question: str, pattern: str, is_regex: bool, answer: str,
             priority: int = 0, active: bool = True) -> dict[str, object]:
    question, answer = question.strip(), answer.strip()
    if not question or len(question) > 128:
        raise BadEntry("a question is 1 to 128 characters")
    if not answer or len(answer) > 2000:
        raise BadEntry("an answer is 1 to 2,000 characters")
    pattern = faq.check_pattern(pattern, is_regex)
    entry = FaqEntry() if entry_id is None else db.session.get(FaqEntry, entry_id)
    if entry is None:
        raise BadEntry(f"no FAQ entry {entry_id}")
    entry.question, entry.pattern, entry.is_regex, entry.answer = question, pattern, is_regex, answer
    entry.priority, entry.active, entry.updated_at = priority, active, utcnow()
    db.session.add(entry)
    db.session.flush()
    return _faq_dict(entry)


def delete_faq(entry_id: int) -> None:
    entry = db.session.get(FaqEntry, entry_id)
    if entry is None:
        raise BadEntry(f"no FAQ entry {entry_id}")
    db.session.delete(entry)
    db.session.flush()


def _canned_dict(c: CannedReply) -> dict[str, object]:
    return {"id": c.id, "shortcut": c.shortcut, "body": c.body, "shared": c.owner_id is None}


def canned_for(agent: Agent) -> list[dict[str, object]]:
    rows = db.session.scalars(select(CannedReply).where(or_(CannedReply.owner_id.is_(None),
                                                            CannedReply.owner_id == agent.id))
                              .order_by(CannedReply.shortcut, CannedReply.id))
    return [_canned_dict(c) for c in rows]


def save_canned(agent: Agent, canned_id: int | None, *, shortcut: str, body: str, shared: bool) -> dict[str, object]:
    shortcut, body = shortcut.strip(), body.strip()
    if not shortcut or len(shortcut) > 32:
        raise BadEntry("a shortcut is 1 to 32 characters")
    if not body or len(body) > 2000:
        raise BadEntry("a canned reply is 1 to 2,000 characters")
    reply = CannedReply() if canned_id is None else db.session.get(CannedReply, canned_id)
    if reply is None or (reply.owner_id is not None and reply.owner_id != agent.id):
        raise BadEntry(f"no canned reply {canned_id}")
    reply.shortcut, reply.body, reply.owner_id = shortcut, body, None if shared else agent.id
    clash = db.session.scalar(select(CannedReply.id).where(
        CannedReply.shortcut == shortcut, CannedReply.id != (reply.id or 0),
        CannedReply.owner_id.is_(None) if shared else CannedReply.owner_id == agent.id))
    if clash:
        raise BadEntry(f"the shortcut {shortcut!r} is taken")
    db.session.add(reply)
    db.session.flush()
    return _canned_dict(reply)


def delete_canned(agent: Agent, canned_id: int) -> None:
    reply = db.session.get(CannedReply, canned_id)
    if reply is None or (reply.owner_id is not None and reply.owner_id != agent.id):
        raise BadEntry(f"no canned reply {canned_id}")
    db.session.delete(reply)
    db.session.flush()


def search(agent: Agent, query: str) -> list[dict[str, object]]:
    query = query.strip()
    if not query:
        return []
    like = f"%{query.replace('%', '').replace('_', '')}%"
    found: list[dict[str, object]] = []
    for m, status in db.session.execute(select(Message, Conversation.status).join(
            Conversation, Conversation.id == Message.conversation_id).where(
            access.visible_to(agent), Message.body.like(like)).order_by(Message.id.desc()).limit(50)):
        found.append({"conversation_id": m.conversation_id, "at": m.created_at.isoformat(), "direction": m.direction,
                      "snippet": m.body[:120], "status": status})
    for p, status in db.session.execute(select(InboundPush, Conversation.status).join(
            Conversation, Conversation.id == InboundPush.conversation_id).where(
            access.visible_to(agent), InboundPush.content.like(like)).order_by(InboundPush.id.desc()).limit(50)):
        found.append({"conversation_id": p.conversation_id, "at": p.received_at.isoformat(), "direction": "in",
                      "snippet": p.content[:120], "status": status})
    found.sort(key=lambda r: str(r["at"]), reverse=True)
    return found[:50]
