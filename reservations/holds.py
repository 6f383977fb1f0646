"""Goods held for a try-on. Flushes, never commits.

Taking a unit is one guarded UPDATE (`held < holdable`) in the same savepoint as the hold's INSERT:
of two hundred shoppers tapping at once for five units, exactly five get one, and a retried tap
(same idempotency key) finds its first hold instead of taking a second unit. Every change of a
hold's status is a move from the table in states.py, applied as a compare-and-swap; leaving a
holding state gives the unit back in the same transaction. A move made by staff (`staff_id` given)
records its audit entry (reservation.hold_confirm, .hold_visited, .hold_cancel) once its
compare-and-swap has succeeded: a refused move or a repeat that changes nothing records none.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from members import audit
from reservations import capacity, events, notices, slots
from reservations.exceptions import BadTime, NotAllowed, SoldOut, UnknownReservation
from reservations.models import GoodsHold, HoldableVariant
from reservations.states import CONFIRMED, EXPIRED, HELD, HOLD_MOVES, HOLDING, VISITED, allowed
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services

MAX_DAYS_AHEAD = 14


def subject(hold_id: int) -> str:
    return f"hold:{hold_id}"


def _by_key(openid: str, idempotency_key: str) -> GoodsHold | None:
    return db.session.scalar(select(GoodsHold).where(GoodsHold.openid == openid,
                                                     GoodsHold.idempotency_key == idempotency_key))


def default_expiry(visit_day: date) -> datetime:
    """RESERVATION_HOLD_MINUTES after the visit day's store midnight (default: the day's end)."""
    return slots.store_midnight(visit_day) + timedelta(minutes=services().settings.RESERVATION_HOLD_MINUTES)


def check_visit_day(visit_day: date, now: datetime) -> None:
    today = slots.store_day(now)
    if visit_day < today:
        raise BadTime(f"{visit_day.isoformat()} has passed")
    if visit_day > today + timedelta(days=MAX_DAYS_AHEAD):
        raise BadTime(f"goods can be held at most {MAX_DAYS_AHEAD} days ahead")


def hold(variant_id: int, openid: str, idempotency_key: str, visit_day: date, expires_at: datetime | None = None, *,
         member_id: int | None = None, now: datetime | None = None) -> GoodsHold:
    """Hold one unit of the variant for the shopper's visit. SoldOut when none is left; the same
    key again returns the first hold (and takes nothing more)."""
    found = _by_key(openid, idempotency_key)
    if found is not None:
        return found
    now = now or utcnow()
    check_visit_day(visit_day, now)
    expires_at = expires_at or default_expiry(visit_day)
    if expires_at <= now:
        raise NotAllowed("a hold must end after now")
    status = CONFIRMED if services().settings.RESERVATION_AUTO_CONFIRM_HOLDS else HELD
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
                            visit_day=visit_day, status=status, expires_at=expires_at, created_at=now, changed_at=now,
                            visit_code=capacity.visit_code("H"))
            db.session.add(new)
            db.session.flush()
            events.hold_changed(new)
    except IntegrityError:  # the same tap, retried at the same moment: its twin won (and took the unit)
        found = _by_key(openid, idempotency_key)
        if found is None:
            raise
        return found
    notices.queue(subject(new.id), "held" if status == HELD else "confirmed", openid, now=now)
    return new


# The audit action of a staff member's move to each status.
ACTIONS = {CONFIRMED: "reservation.hold_confirm", VISITED: "reservation.hold_visited",
           "cancelled": "reservation.hold_cancel"}


def _audit(staff_id: int | None, hold_id: int, before: str, after: str, detail: str = "") -> None:
    if staff_id is not None and before != after:
        audit.record(staff_id, ACTIONS.get(after, f"reservation.hold_{after}"), subject(hold_id),
                     before={"status": before}, after={"status": after}, detail=detail)


def own(hold_id: int, openid: str | None = None, counters: frozenset[str] | None = None) -> GoodsHold:
    """The hold, if it is the shopper's (`openid`) or at one of the staff member's counters."""
    current = db.session.get(GoodsHold, hold_id, populate_existing=True)
    if current is None or (openid is not None and current.openid != openid):
        raise UnknownReservation(f"no hold {hold_id}")
    if counters is not None and db.session.get(HoldableVariant, current.variant_id).counter_code not in counters:
        raise UnknownReservation(f"no hold {hold_id} at your counters")
    return current


def move(hold_id: int, target: str, *, openid: str | None = None, counters: frozenset[str] | None = None,
         now: datetime | None = None, notify: bool = True, staff_id: int | None = None,
         detail: str = "") -> GoodsHold:
    """Move the hold to `target` if the table allows it from where it is now (with `openid`, only
    the shopper's own hold; with `counters`, only one at those counters). Leaving a holding state
    gives the unit back. Audited (holds.ACTIONS) with `staff_id`."""
    now = now or utcnow()
    current = own(hold_id, openid, counters)
    source = current.status
    if source == target == VISITED:
        return current  # the same code scanned twice
    if not allowed(HOLD_MOVES, source, target):
        raise NotAllowed(f"a {source} hold cannot become {target}")
    extra = {"visited_at": now} if target == VISITED else {}
    moved = db.session.execute(update(GoodsHold).where(GoodsHold.id == hold_id, GoodsHold.status == source)
                               .values(status=target, changed_at=now, **extra)).rowcount
    if not moved:
        raise NotAllowed(f"hold {hold_id} changed meanwhile; look again")
    events.hold_changed(current)
    if source in HOLDING and target not in HOLDING:
        db.session.execute(update(HoldableVariant).where(HoldableVariant.id == current.variant_id,
                                                         HoldableVariant.held > 0)
                           .values(held=HoldableVariant.held - 1))
    _audit(staff_id, hold_id, source, target, detail)
    if notify and (target == CONFIRMED or (target == "cancelled" and openid is None)):
        notices.queue(subject(hold_id), target, current.openid, now=now)
    return own(hold_id)


def visit(hold_id: int, *, counters: frozenset[str] | None = None, now: datetime | None = None,
          staff_id: int | None = None, detail: str = "") -> GoodsHold:
    """The shopper came to try it on: a held hold is confirmed on the spot and marked visited.
    One audit entry with `staff_id` (held -> visited), none when it was visited already."""
    now = now or utcnow()
    current = own(hold_id, None, counters)
    before = current.status
    if current.status == HELD:
        move(hold_id, CONFIRMED, counters=counters, now=now, notify=False)
    visited = move(hold_id, VISITED, counters=counters, now=now)
    _audit(staff_id, hold_id, before, visited.status, detail)  # both moves' swaps have succeeded
    return visited


def expire_due(now: datetime | None = None) -> int:
    """The sweep: every hold past its expiry gives its unit back. Each in its own savepoint, so a
    hold changed meanwhile (visited, cancelled) is skipped. Returns how many expired."""
    now = now or utcnow()
    due = db.session.scalars(select(GoodsHold.id).where(GoodsHold.status.in_(HOLDING), GoodsHold.expires_at <= now)
                             .order_by(GoodsHold.id).limit(1000)).all()
    expired = 0
    for hold_id in due:
        try:
            with db.session.begin_nested():
                move(hold_id, EXPIRED, now=now)
                expired += 1
        except NotAllowed:
            continue
    return expired


def by_visit_code(code: str) -> GoodsHold | None:
    return db.session.scalar(select(GoodsHold).where(GoodsHold.visit_code == code.strip().upper()))


def link_payment(hold_id: int, out_trade_no: str) -> None:
    db.session.execute(update(GoodsHold).where(GoodsHold.id == hold_id).values(out_trade_no=out_trade_no))
    events.hold_changed(own(hold_id))
