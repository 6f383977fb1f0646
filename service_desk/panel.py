"""STUB (deskui branch): the side panel beside a conversation, minimal. The read-side branch's
fuller version (orders, refunds, reservations) replaces this file at merge; names agreed."""
from __future__ import annotations

from sqlalchemy import select

from members.models import Member
from service_desk import access
from service_desk.models import Agent, Conversation, PhoneReveal
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db


def _masked(phone: str | None) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 7 else ""


def side_panel(agent: Agent, conversation_id: int) -> dict[str, object]:
    conversation = access.conversation_for(agent, conversation_id)
    member = db.session.get(Member, conversation.member_id) if conversation.member_id else None
    earlier = db.session.execute(select(Conversation.id, Conversation.created_at, Conversation.status).where(
        Conversation.openid == conversation.openid, Conversation.id != conversation.id, access.visible_to(agent))
        .order_by(Conversation.id.desc()).limit(10)).all()
    return {"member": ({"id": member.id, "name": member.name, "level": member.level,
                       "points": member.points_balance, "phone_masked": _masked(member.phone),
                       "has_phone": bool(member.phone)} if member else None),
            "orders": [], "refunds": [],
            "earlier_conversations": [{"id": i, "created_at": at.isoformat(), "status": s} for i, at, s in earlier],
            "context": conversation.context, "reservations": [], "reservations_note": ""}


def reveal_phone(agent: Agent, conversation_id: int) -> str:
    """The member's full phone number, once written down as seen by this agent."""
    conversation = access.conversation_for(agent, conversation_id)
    member = db.session.get(Member, conversation.member_id) if conversation.member_id else None
    if member is None or not member.phone:
        raise LookupError("this shopper has no phone number on file")
    db.session.add(PhoneReveal(agent_id=agent.id, member_id=member.id, conversation_id=conversation.id,
                               revealed_at=utcnow()))
    db.session.flush()
    return member.phone
