"""Goods held for a try-on. Flushes, never commits.

Taking a unit is one guarded UPDATE (`held < holdable`) in the same savepoint as the hold's INSERT:
of two hundred shoppers tapping at once for five units, exactly five get one, and a retried tap
(same idempotency key) finds its first hold instead of taking a second unit. Every change of a
hold's status is a move from the table in states.py, applied as a compare-and-swap; leaving a
holding state gives the unit back in the same transaction.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from reservations.exceptions import NotAllowed, SoldOut, UnknownReservation
from reservations.models import GoodsHold, HoldableVariant
from reservations.states import EXPIRED, HELD, HOLD_MOVES, HOLDING, allowed
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db


def _by_key(openid: str, idempotency_key: str) -> GoodsHold | None:
    return db.session.scalar(select(GoodsHold).where(GoodsHold.openid == openid,
                                                     GoodsHold.idempotency_key == idempotency_key))


def hold(variant_id: int, openid: str, idempotency_key: str, visit_day: date, expires_at: datetime, *,
         member_id: int | None = None, now: datetime | None = None) -> GoodsHold:
    """Hold one unit of the variant for the shopper's visit. SoldOut when none is left; the same
    key again returns the first hold (and takes nothing more)."""
    found = _by_key(openid, idempotency_key)
    if found is not None:
        return found
    now = now or utcnow()
    if expires_at <= now:
        raise NotAllowed("a hold must end after now")
    try:
        with db.session.begin_nested():
            took = db.session.execute(update(HoldableVariant).where(
                HoldableVariant.id == variant_id, HoldableVariant.held < HoldableVariant.holdable)
                .values(held=HoldableVariant.held + 1)).rowcount
            if not took:
                if db.session.get(HoldableVariant, variant_id) is None:
                    raise UnknownReservation(f"no holdable item {variant_id}")
                raise SoldOut("every unit of this item is held; try another size or colour, or another day")
            new = GoodsHold(variant_id=variant_id, openid=openid, member_id=member_id, idempotency_key=idempotency_key,
                            visit_day=visit_day, status=HELD, expires_at=expires_at, created_at=now, changed_at=now)
            db.session.add(new)
            db.session.flush()
    except IntegrityError:  # the same tap, retried at the same moment: its twin won (and took the unit)
        found = _by_key(openid, idempotency_key)
        if found is None:
            raise
        return found
    return new


def move(hold_id: int, target: str, *, openid: str | None = None, now: datetime | None = None) -> GoodsHold:
    """Move the hold to `target` if the table allows it from where it is now (and, with `openid`,
    only the shopper's own hold). Leaving a holding state gives the unit back."""
    current = db.session.get(GoodsHold, hold_id, populate_existing=True)
    if current is None or (openid is not None and current.openid != openid):
        raise UnknownReservation(f"no hold {hold_id}")
    source = current.status
    if not allowed(HOLD_MOVES, source, target):
        raise NotAllowed(f"a {source} hold cannot become {target}")
    moved = db.session.execute(update(GoodsHold).where(GoodsHold.id == hold_id, GoodsHold.status == source)
                               .values(status=target, changed_at=now or utcnow())).rowcount
    if not moved:
        raise NotAllowed(f"hold {hold_id} changed meanwhile; look again")
    if source in HOLDING and target not in HOLDING:
        db.session.execute(update(HoldableVariant).where(HoldableVariant.id == current.variant_id,
                                                         HoldableVariant.held > 0)
                           .values(held=HoldableVariant.held - 1))
    return db.session.get(GoodsHold, hold_id, populate_existing=True)


def expire_due(now: datetime | None = None) -> int:
    """The sweep: every hold past its expiry gives its unit back. Each in its own savepoint, so a
    hold changed meanwhile (visited, cancelled) is skipped. Returns how many expired."""
    now = now or utcnow()
    due = db.session.scalars(select(GoodsHold.id).where(GoodsHold.status.in_(HOLDING), GoodsHold.expires_at <= now)
                             .order_by(GoodsHold.id)).all()
    expired = 0
    for hold_id in due:
        try:
            with db.session.begin_nested():
                move(hold_id, EXPIRED, now=now)
                expired += 1
        except NotAllowed:
            continue
    return expired
