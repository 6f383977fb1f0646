"""The side panel beside a conversation: who the shopper is (member, level, points, card), what
they bought and had refunded, their upcoming reservations (bookings and goods holds), their
earlier chats, and what they came from (a counter, an order, a product). Reads, except `reveal_phone`, which writes an audit row every time.

Personal data is shown masked: the card code to its last four digits, the phone as 138****1234.
The full phone number is one deliberate click away (`reveal_phone`), and every click is recorded
(`PhoneReveal`) and never logged with the number in it.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select

from members import audit
from members.cards import masked as masked_card
from members.models import Member, MemberCard, Staff
from payments.models import Order, Refund
from reservations import slots
from reservations.models import Booking, GoodsHold, HoldableVariant, Resource, Service
from reservations.states import CHECKED_IN, HOLDING, OPEN
from service_desk import access
from service_desk.exceptions import NoPhone
from service_desk.models import Agent, Conversation, PhoneReveal
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

log = logging.getLogger(__name__)

MAX_ORDERS = 10
MAX_EARLIER = 10
MAX_RESERVATIONS = 10
CONTEXT_KINDS = ("counter", "order", "product", "reservation")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def mask_phone(phone: str | None) -> str:
    """138****1234: enough for an agent to confirm with the shopper, not enough to call."""
    if not phone:
        return ""
    if len(phone) >= 11:
        return f"{phone[:3]}****{phone[-4:]}"
    return "*" * max(0, len(phone) - 4) + phone[-4:]


def _member_of(conversation: Conversation) -> Member | None:
    """The conversation's member, following a merge to the member that survived it."""
    member = db.session.get(Member, conversation.member_id) if conversation.member_id is not None else None
    seen = set()
    while member is not None and member.merged_into_id is not None and member.id not in seen:
        seen.add(member.id)
        member = db.session.get(Member, member.merged_into_id)
    return member


def _member_dict(member: Member) -> dict[str, object]:
    card = db.session.scalar(select(MemberCard).where(MemberCard.member_id == member.id,
                                                      MemberCard.status != "deleted")
                             .order_by(MemberCard.issued_at.desc(), MemberCard.id.desc()).limit(1))
    return {"id": member.id, "name": member.name, "level": member.level, "points_balance": member.points_balance,
            "card_code_masked": masked_card(card.code) if card else "", "card_status": card.status if card else None,
            "phone_masked": mask_phone(member.phone), "has_phone": bool(member.phone),
            "joined_at": _iso(member.joined_at)}


def _order_dict(order: Order) -> dict[str, object]:
    return {"out_trade_no": order.out_trade_no, "amount_fen": order.amount_fen, "status": order.state,
            "counter": order.counter, "description": order.description, "kind": order.kind,
            "created_at": _iso(order.created_at), "paid_at": _iso(order.paid_at)}


def _shoppers_orders(conversation: Conversation, member: Member | None):
    """Orders placed by the member, or paid from the conversation's openid (a shopper who never
    joined still has orders)."""
    mine = [Order.payer_openid == conversation.openid]
    if member is not None:
        mine.append(Order.member_id == member.id)
    return or_(*mine)


def _context(conversation: Conversation, member: Member | None) -> dict[str, object]:
    """The entry context as stored, and read: `counter:<code>`, `order:<out_trade_no>` (with
    the order, if it is this shopper's), `product:<sku>`, `reservation:<id>`."""
    raw = conversation.context or ""
    kind, _, value = raw.partition(":")
    parsed: dict[str, object] | None = None
    if kind in CONTEXT_KINDS and value:
        parsed = {"kind": kind, "value": value}
        if kind == "order":
            # Only the shopper's own order is shown: a context is what the shopper's client sent.
            order = db.session.scalar(select(Order).where(Order.out_trade_no == value,
                                                          _shoppers_orders(conversation, member)))
            parsed["order"] = _order_dict(order) if order else None
    return {"source": conversation.source, "raw": raw, "parsed": parsed}


def _reservations(conversation: Conversation, member: Member | None) -> list[dict[str, object]]:
    """The shopper's bookings still to come (or checked in today) and goods they hold, soonest
    first. Found by openid or by member (a mini-program booking and an OA chat are one member's).
    No visit codes: the code is the shopper's key at the counter, not the desk's business."""
    now = utcnow()
    bookings_mine = [Booking.openid == conversation.openid]
    holds_mine = [GoodsHold.openid == conversation.openid]
    if member is not None:
        bookings_mine.append(Booking.member_id == member.id)
        holds_mine.append(GoodsHold.member_id == member.id)
    today = slots.store_midnight(slots.store_day(now))
    booked = db.session.execute(
        select(Booking, Service, Resource).join(Service, Service.id == Booking.service_id)
        .join(Resource, Resource.id == Booking.resource_id)
        .where(or_(*bookings_mine), or_(Booking.status.in_(OPEN) & (Booking.ends_at > now),
                                        (Booking.status == CHECKED_IN) & (Booking.starts_at >= today)))
        .order_by(Booking.starts_at, Booking.id).limit(MAX_RESERVATIONS)).all()
    held = db.session.execute(
        select(GoodsHold, HoldableVariant).join(HoldableVariant, HoldableVariant.id == GoodsHold.variant_id)
        .where(or_(*holds_mine), GoodsHold.status.in_(HOLDING), GoodsHold.expires_at > now)
        .order_by(GoodsHold.visit_day, GoodsHold.id).limit(MAX_RESERVATIONS)).all()
    return ([{"kind": "booking", "id": b.id, "status": b.status, "what": f"{s.name} · {r.name}",
              "counter": s.counter_code, "starts_at": _iso(b.starts_at), "ends_at": _iso(b.ends_at)}
             for b, s, r in booked]
            + [{"kind": "hold", "id": h.id, "status": h.status, "what": f"{v.brand} {v.product} {v.variant}",
                "counter": v.counter_code, "visit_day": h.visit_day.isoformat(), "expires_at": _iso(h.expires_at)}
               for h, v in held])


def side_panel(agent: Agent, conversation_id: int) -> dict[str, object]:
    """Everything the agent sees beside the chat. Works for a shopper who is no member (member
    None; orders paid from their openid are still found). UnknownConversation when the agent may
    not see the conversation."""
    conversation = access.conversation_for(agent, conversation_id)
    member = _member_of(conversation)
    shoppers = _shoppers_orders(conversation, member)
    orders = db.session.scalars(select(Order).where(shoppers)
                                .order_by(Order.created_at.desc(), Order.id.desc()).limit(MAX_ORDERS)).all()
    refunds = db.session.execute(select(Refund, Order.out_trade_no).join(Order, Order.id == Refund.order_id)
                                 .where(shoppers).order_by(Refund.created_at.desc(), Refund.id.desc())
                                 .limit(MAX_ORDERS)).all()
    same_shopper = [Conversation.openid == conversation.openid]
    if member is not None:
        same_shopper.append(Conversation.member_id == member.id)
    earlier = db.session.scalars(select(Conversation).where(
        or_(*same_shopper), Conversation.id != conversation.id, access.visible_to(agent))
        .order_by(Conversation.created_at.desc(), Conversation.id.desc()).limit(MAX_EARLIER)).all()
    return {
        "conversation_id": conversation.id,
        "member": _member_dict(member) if member else None,
        "orders": [_order_dict(order) for order in orders],
        "refunds": [{"out_refund_no": refund.out_refund_no, "out_trade_no": out_trade_no,
                     "amount_fen": refund.amount_fen, "status": refund.status, "reason": refund.reason,
                     "created_at": _iso(refund.created_at), "succeeded_at": _iso(refund.succeeded_at)}
                    for refund, out_trade_no in refunds],
        "earlier_conversations": [{"id": c.id, "created_at": _iso(c.created_at), "resolved_at": _iso(c.resolved_at),
                                   "status": c.status, "csat": c.csat, "source": c.source} for c in earlier],
        "context": _context(conversation, member),
        "reservations": _reservations(conversation, member),
    }


def reveal_phone(agent: Agent, conversation_id: int, now: datetime | None = None) -> str:
    """The member's full phone number, for an agent who must call them back. Each call appends a
    PhoneReveal row (who, whose, in which conversation, when); NoPhone when there is none."""
    conversation = access.conversation_for(agent, conversation_id)
    member = _member_of(conversation)
    if member is None or not member.phone:
        raise NoPhone("this shopper has no phone number on file")
    db.session.add(PhoneReveal(agent_id=agent.id, member_id=member.id, conversation_id=conversation.id,
                               revealed_at=now or utcnow()))
    db.session.flush()
    # The staff audit log too (never the number itself: who looked, at whose, from which chat).
    audit.record(agent.staff_id, "desk.phone_reveal", f"member:{member.id}",
                 after={"conversation": conversation.id, "agent": agent.id})
    log.info("desk phone revealed", extra={"agent": agent.id, "member": member.id, "conversation": conversation.id})
    return member.phone


def reveals(member_id: int) -> list[dict[str, object]]:
    """Who saw the member's phone number, newest first: for the audit page."""
    rows = db.session.execute(
        select(PhoneReveal, Staff.name).join(Agent, Agent.id == PhoneReveal.agent_id)
        .join(Staff, Staff.id == Agent.staff_id).where(PhoneReveal.member_id == member_id)
        .order_by(PhoneReveal.revealed_at.desc(), PhoneReveal.id.desc())).all()
    return [{"id": reveal.id, "agent_id": reveal.agent_id, "agent_name": name, "member_id": reveal.member_id,
             "conversation_id": reveal.conversation_id, "revealed_at": _iso(reveal.revealed_at)}
            for reveal, name in rows]
