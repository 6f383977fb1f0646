"""Service appointments: one unit of one resource's capacity at one start time. Flushes, never
commits.

Booking checks the time against the service's generated slots, takes one of the shopper's open
bookings (`open_bookings < RESERVATION_MAX_OPEN`) and one unit of a resource (`used < capacity`),
each by a guarded UPDATE, and inserts the booking, all in one savepoint: of five hundred shoppers
booking a slot of three at once, exactly three get it, and a retried tap (same idempotency key)
returns the first booking. Every status change is a move from states.py applied as a
compare-and-swap; leaving an occupying state releases the unit to the waiting list (waitlist.py).

A move made by staff (`staff_id` given) records its audit entry (reservation.check_in, .confirm,
.decline, .cancel) right after its compare-and-swap succeeds, in the same transaction: a refused
move records nothing, and neither does a repeat that changes nothing (a second check-in).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketing import touches
from members import audit
from reservations import capacity, events, notices, slots, waitlist
from reservations.exceptions import BadTime, LimitReached, NotAllowed, SoldOut, TooLate, UnknownReservation
from reservations.models import Booking, Resource, Service, SlotUsage, WaitlistEntry
from reservations.states import (
    BOOKED,
    BOOKING_MOVES,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    OCCUPYING,
    OFFERED,
    OPEN,
    REQUESTED,
    RESCHEDULED,
    TAKEN,
    allowed,
)
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services


def subject(booking_id: int) -> str:
    return f"booking:{booking_id}"


def _settings():
    return services().settings


def _by_key(openid: str, idempotency_key: str) -> Booking | None:
    return db.session.scalar(select(Booking).where(Booking.openid == openid,
                                                   Booking.idempotency_key == idempotency_key))


def get_service(service_id: int) -> Service:
    service = db.session.get(Service, service_id)
    if service is None or not service.active:
        raise UnknownReservation(f"no service {service_id}")
    return service


def resources_of(service: Service, resource_id: int | None = None) -> list[Resource]:
    """The active resources that can serve it (or the one asked for, which must be one of them)."""
    query = select(Resource).where(Resource.service_id == service.id, Resource.active.is_(True)).order_by(Resource.id)
    found = list(db.session.scalars(query))
    if resource_id is not None:
        found = [r for r in found if r.id == resource_id]
        if not found:
            raise UnknownReservation(f"no resource {resource_id} for {service.name}")
    return found


def check_time(service: Service, starts_at: datetime, now: datetime) -> None:
    """BadTime unless `starts_at` is one of the service's bookable start times now."""
    if starts_at.tzinfo is None:
        raise BadTime("the time must carry its zone offset (e.g. 2026-12-05T14:00:00+08:00)")
    day = slots.store_day(starts_at)
    slots.check_start(service, starts_at, now, slots.hours_for(service.counter_code, [day])[day])


def recent_no_shows(openid: str, now: datetime) -> int:
    since = now - timedelta(days=_settings().RESERVATION_NOSHOW_DAYS)
    return db.session.scalar(select(func.count()).select_from(Booking).where(
        Booking.openid == openid, Booking.status == NO_SHOW, Booking.starts_at >= since)) or 0


def needs_confirmation(openid: str, now: datetime) -> bool:
    """The configured rule: after RESERVATION_NOSHOW_LIMIT no-shows in RESERVATION_NOSHOW_DAYS, the
    counter confirms each new booking."""
    limit = _settings().RESERVATION_NOSHOW_LIMIT
    return limit > 0 and recent_no_shows(openid, now) >= limit


def _insert(service: Service, resource: Resource, starts_at: datetime, openid: str, idempotency_key: str, *,
            member_id: int | None, previous_id: int | None, channel: str, status: str, now: datetime,
            publish: bool = True) -> Booking:
    booking = Booking(service_id=service.id, resource_id=resource.id, starts_at=starts_at,
                      ends_at=starts_at + timedelta(minutes=service.duration_minutes), openid=openid,
                      member_id=member_id, idempotency_key=idempotency_key, status=status, previous_id=previous_id,
                      channel=channel[:16], visit_code=capacity.visit_code("B"), created_at=now, changed_at=now)
    db.session.add(booking)
    db.session.flush()
    if previous_id is None:  # a reschedule is the same reservation, moved
        # The funnel's touch, in the caller's savepoint: a booking that fails takes it with it.
        touches.record("reservation", key=f"booking:{booking.id}", openid=openid, member_id=member_id,
                       brand_counter=service.counter_code, source=channel, occurred_at=now)
    if publish:
        events.booking_changed(booking)
    return booking


def book(service_id: int, starts_at: datetime, openid: str, idempotency_key: str, *, resource_id: int | None = None,
         member_id: int | None = None, channel: str = "mp", previous_id: int | None = None,
         now: datetime | None = None) -> Booking:
    """Book one unit at `starts_at` (of the resource asked for, else of the first with room).

    BadTime for a time the service does not offer, LimitReached at the shopper's limit of open
    bookings, SoldOut when the slot is full; the same key again returns the first booking."""
    found = _by_key(openid, idempotency_key)
    if found is not None:
        return found
    now = now or utcnow()
    service = get_service(service_id)
    candidates = resources_of(service, resource_id)
    check_time(service, starts_at, now)
    status = REQUESTED if needs_confirmation(openid, now) else BOOKED
    if not candidates:
        raise SoldOut("nobody serves this service at the moment; pick another")
    notice = None
    try:
        with db.session.begin_nested():
            # A reschedule swaps one open booking for another: it takes no second place in the limit.
            if previous_id is None and not capacity.take_open_booking(openid, _settings().RESERVATION_MAX_OPEN):
                raise LimitReached(f"you already have {_settings().RESERVATION_MAX_OPEN} open bookings; "
                                   "cancel one or come to the ones you have first")
            booking = _insert(service, candidates[0], starts_at, openid, idempotency_key, member_id=member_id,
                              previous_id=previous_id, channel=channel, status=status, now=now, publish=False)
            if previous_id is None:
                notice = notices.add(subject(booking.id), "requested" if status == REQUESTED else "confirmed",
                                     openid, now=now)
            # The slot's unit last: its row lock (on a busy slot, what the other bookers queue on)
            # is then held only for the savepoint's release and the commit.
            resource = next((r for r in candidates if capacity.take_unit(r, starts_at)), None)
            if resource is None:
                raise SoldOut("this time is full; pick another, or join the waiting list")
            if resource.id != booking.resource_id:
                booking.resource_id = resource.id
                db.session.flush()
    except IntegrityError:  # the same tap, retried at the same moment: its twin won
        found = _by_key(openid, idempotency_key)
        if found is None:
            raise
        return found
    events.booking_changed(booking)
    if notice is not None:
        notices.send_after_commit(notice)
    return booking


def take_offer(entry_id: int, openid: str, idempotency_key: str, *, now: datetime | None = None) -> Booking:
    """The shopper takes the unit their waiting-list offer kept for them: a booking, with no new
    unit taken (the offer holds one)."""
    found = _by_key(openid, idempotency_key)
    if found is not None:
        return found
    now = now or utcnow()
    entry = waitlist.own(entry_id, openid)
    if entry.status != OFFERED or entry.offered_until is None or entry.offered_until <= now:
        raise NotAllowed("this offer is no longer open; it has passed to the next shopper")
    service = get_service(entry.service_id)
    resource = db.session.get(Resource, entry.resource_id)
    with db.session.begin_nested():
        if not capacity.take_open_booking(openid, _settings().RESERVATION_MAX_OPEN):
            raise LimitReached(f"you already have {_settings().RESERVATION_MAX_OPEN} open bookings; cancel one first")
        booking = _insert(service, resource, entry.starts_at, openid, idempotency_key, member_id=entry.member_id,
                          previous_id=None, channel="waitlist", status=BOOKED, now=now)
        moved = db.session.execute(update(WaitlistEntry).where(WaitlistEntry.id == entry.id,
                                                               WaitlistEntry.status == OFFERED)
                                   .values(status=TAKEN, booking_id=booking.id, changed_at=now)).rowcount
        if not moved:
            raise NotAllowed("this offer changed meanwhile; look again")
    notices.queue(subject(booking.id), "confirmed", openid, now=now)
    return booking


def _audit(staff_id: int | None, action: str, booking_id: int, before: str, after: str, detail: str = "") -> None:
    """A staff member's move, after its compare-and-swap: one audit entry (none without staff)."""
    if staff_id is not None and before != after:
        audit.record(staff_id, action, subject(booking_id), before={"status": before}, after={"status": after},
                     detail=detail)


def _move(booking: Booking, target: str, now: datetime, **values: object) -> None:
    source = booking.status
    if not allowed(BOOKING_MOVES, source, target):
        raise NotAllowed(f"a {source} booking cannot become {target}")
    moved = db.session.execute(update(Booking).where(Booking.id == booking.id, Booking.status == source)
                               .values(status=target, changed_at=now, **values)).rowcount
    if not moved:
        raise NotAllowed(f"booking {booking.id} changed meanwhile; look again")
    events.booking_changed(booking)
    if source in OPEN and target not in OPEN and target != RESCHEDULED:
        capacity.drop_open_booking(booking.openid)
    if source in OCCUPYING and target not in OCCUPYING:
        waitlist.release(booking.service_id, booking.resource_id, booking.starts_at, now=now)


def own(booking_id: int, openid: str | None = None) -> Booking:
    """The booking, if it is the shopper's (with `openid`); a tampered id is answered as none."""
    booking = db.session.get(Booking, booking_id, populate_existing=True)
    if booking is None or (openid is not None and booking.openid != openid):
        raise UnknownReservation(f"no booking {booking_id}")
    return booking


def _check_cutoff(booking: Booking, now: datetime, what: str) -> None:
    minutes = _settings().RESERVATION_CUTOFF_MINUTES
    if booking.starts_at - timedelta(minutes=minutes) <= now:
        raise TooLate(f"a booking can be {what} up to {minutes} minutes before it starts; call the counter")


def cancel(booking_id: int, reason: str, *, openid: str | None = None, now: datetime | None = None,
           staff_id: int | None = None, action: str = "reservation.cancel") -> Booking:
    """Cancel with a reason. The shopper (with `openid`) only before the cut-off; the counter any
    time before the visit (audited as `action` with `staff_id`). The unit goes to the waiting
    list, or back to the slot."""
    now = now or utcnow()
    booking = own(booking_id, openid)
    if openid is not None:
        _check_cutoff(booking, now, "cancelled")
    before = booking.status
    reason = (reason or "").strip()[:500]
    _move(booking, CANCELLED, now, cancel_reason=reason)
    _audit(staff_id, action, booking.id, before, CANCELLED, reason)
    notices.queue(subject(booking.id), "cancelled", booking.openid, now=now)
    return own(booking_id)


def reschedule(booking_id: int, starts_at: datetime, idempotency_key: str, *, openid: str | None = None,
               now: datetime | None = None) -> Booking:
    """Book the new time first, then release the old one; the new booking points back to it. If
    the new time is full, the old booking stands. The same key again returns the new booking."""
    now = now or utcnow()
    old = own(booking_id, openid)
    found = _by_key(old.openid, idempotency_key)
    if found is not None and found.previous_id == old.id:
        return found
    if found is not None:  # else book() would hand back that other booking as if it were the new time
        raise NotAllowed("this request's key was already used for another booking; send a new one")
    if old.status not in OPEN:
        raise NotAllowed(f"a {old.status} booking cannot be moved")
    if openid is not None:
        _check_cutoff(old, now, "moved")
    with db.session.begin_nested():
        new = book(old.service_id, starts_at, old.openid, idempotency_key, member_id=old.member_id,
                   previous_id=old.id, channel=old.channel, now=now)
        if new.status == REQUESTED and old.status == BOOKED:
            # a confirmed booking moved stays confirmed: the rule applies to new bookings
            db.session.execute(update(Booking).where(Booking.id == new.id).values(status=BOOKED))
        _move(old, RESCHEDULED, now)
    notices.queue(subject(new.id), "changed", new.openid, now=now)
    return own(new.id)


def confirm(booking_id: int, *, counters: frozenset[str] | None = None, now: datetime | None = None,
            staff_id: int | None = None) -> Booking:
    """The counter confirms a booking that waited for it (the no-show rule); audited as
    `reservation.confirm` with `staff_id`."""
    booking = in_scope(booking_id, counters)
    now = now or utcnow()
    before = booking.status
    _move(booking, BOOKED, now)
    _audit(staff_id, "reservation.confirm", booking.id, before, BOOKED)
    notices.queue(subject(booking.id), "confirmed", booking.openid, now=now)
    return own(booking_id)


def decline(booking_id: int, reason: str, *, counters: frozenset[str] | None = None,
            now: datetime | None = None, staff_id: int | None = None) -> Booking:
    """The counter turns down a booking that waited for it; the unit goes to the waiting list.
    Audited as `reservation.decline` (with the reason) with `staff_id`."""
    booking = in_scope(booking_id, counters)
    if booking.status != REQUESTED:  # a confirmed booking is cancelled, with its own reason
        raise NotAllowed(f"only a booking waiting for confirmation can be declined (this one is {booking.status})")
    return cancel(booking.id, reason or "the counter could not confirm this booking", now=now, staff_id=staff_id,
                  action="reservation.decline")


def in_scope(booking_id: int, counters: frozenset[str] | None) -> Booking:
    """The booking, if it is at one of the staff member's counters (None: every counter)."""
    booking = own(booking_id)
    if counters is not None:
        service = db.session.get(Service, booking.service_id)
        if service.counter_code not in counters:
            raise UnknownReservation(f"no booking {booking_id} at your counters")
    return booking


def check_in(booking_id: int, *, counters: frozenset[str] | None = None, now: datetime | None = None,
             staff_id: int | None = None, detail: str = "") -> Booking:
    """The shopper is at the counter: from the start of the booking's store day to its end.
    Audited as `reservation.check_in` with `staff_id` (`detail`: how, e.g. "scan"); a second
    check-in changes nothing and records nothing."""
    now = now or utcnow()
    booking = in_scope(booking_id, counters)
    if booking.status == CHECKED_IN:
        return booking  # a second scan of the same code: nothing more to do
    if slots.store_day(now) != slots.store_day(booking.starts_at):
        raise NotAllowed(f"this booking is for {slots.store_day(booking.starts_at).isoformat()}, not today")
    if booking.status == REQUESTED:
        raise NotAllowed("this booking still waits for the counter to confirm it")
    before = booking.status
    _move(booking, CHECKED_IN, now, checked_in_at=now)
    _audit(staff_id, "reservation.check_in", booking.id, before, CHECKED_IN, detail)
    service = db.session.get(Service, booking.service_id)
    counter = service.counter_code if service is not None else ""
    # A visit in the funnel: at this counter (and its brand), once per booking.
    touches.record("check_in", key=f"booking:{booking.id}", openid=booking.openid, member_id=booking.member_id,
                   counter=counter, brand_counter=counter, occurred_at=now)
    return own(booking_id)


def mark_no_shows(now: datetime | None = None) -> int:
    """The sweep: a booking not checked in by its start + grace is a no-show; a booking still
    waiting for confirmation at its start is cancelled (not the shopper's fault). Returns how many
    were marked no-show."""
    now = now or utcnow()
    grace = timedelta(minutes=_settings().RESERVATION_NOSHOW_GRACE_MINUTES)
    marked = 0
    late = db.session.scalars(select(Booking).where(Booking.status == BOOKED, Booking.starts_at <= now - grace)
                              .order_by(Booking.id).limit(1000)).all()
    for booking in late:
        try:
            with db.session.begin_nested():
                _move(booking, NO_SHOW, now)
                marked += 1
        except NotAllowed:
            continue  # checked in meanwhile
    unconfirmed = db.session.scalars(select(Booking).where(Booking.status == REQUESTED, Booking.starts_at <= now)
                                     .order_by(Booking.id).limit(1000)).all()
    for booking in unconfirmed:
        try:
            with db.session.begin_nested():
                _move(booking, CANCELLED, now, cancel_reason="not confirmed by the counter before the start")
        except NotAllowed:
            continue
        notices.queue(subject(booking.id), "cancelled", booking.openid, now=now)  # else they would come anyway
    return marked


def by_visit_code(code: str) -> Booking | None:
    return db.session.scalar(select(Booking).where(Booking.visit_code == code.strip().upper()))


def link_payment(booking_id: int, out_trade_no: str) -> None:
    """The shopper paid at the counter after the visit: the booking carries the order."""
    db.session.execute(update(Booking).where(Booking.id == booking_id).values(out_trade_no=out_trade_no))
    events.booking_changed(own(booking_id))


@dataclass(frozen=True)
class SlotView:
    starts_at: datetime
    ends_at: datetime
    capacity: int
    free: int
    waiting: int


def availability(service_id: int, day, now: datetime | None = None) -> list[SlotView]:
    """The service's start times on a store day that can be booked now, with what is free at each
    (summed over its resources) and how many wait. Three queries whatever the number of slots."""
    now = now or utcnow()
    service = get_service(service_id)
    resources = resources_of(service)
    hours = slots.hours_for(service.counter_code, [day])
    earliest, latest = slots.bookable_window(service, now)
    starts = [s for s in slots.starts_between(service, day, day, hours) if earliest <= s <= latest and s > now]
    if not starts or not resources:
        return []
    used: dict[datetime, int] = {}
    for starts_at, taken in db.session.execute(
            select(SlotUsage.starts_at, func.sum(SlotUsage.used)).where(
                SlotUsage.resource_id.in_([r.id for r in resources]), SlotUsage.starts_at.between(starts[0], starts[-1]))
            .group_by(SlotUsage.starts_at)):
        used[starts_at] = int(taken or 0)
    waiting: dict[datetime, int] = dict(db.session.execute(
        select(WaitlistEntry.starts_at, func.count()).where(
            WaitlistEntry.service_id == service.id, WaitlistEntry.status == "waiting",
            WaitlistEntry.starts_at.between(starts[0], starts[-1])).group_by(WaitlistEntry.starts_at)).all())
    total = sum(r.capacity for r in resources)
    length = timedelta(minutes=service.duration_minutes)
    return [SlotView(s, s + length, total, max(total - used.get(s, 0), 0), int(waiting.get(s, 0))) for s in starts]


def join_waitlist(service_id: int, starts_at: datetime, openid: str, *, member_id: int | None = None,
                  now: datetime | None = None) -> WaitlistEntry:
    """Join the waiting list of a full slot (a slot with room is booked instead: NotAllowed)."""
    now = now or utcnow()
    service = get_service(service_id)
    check_time(service, starts_at, now)
    free = [v for v in availability(service.id, slots.store_day(starts_at), now) if v.starts_at == starts_at]
    if free and free[0].free > 0:
        raise NotAllowed("this time still has room: book it instead")
    return waitlist.join(service, starts_at, openid, member_id=member_id, now=now)


def open_of(openid: str) -> list[Booking]:
    """The shopper's bookings that are still to come (or waiting), soonest first."""
    return list(db.session.scalars(select(Booking).where(Booking.openid == openid, Booking.status.in_(OPEN + (CHECKED_IN,)))
                                   .order_by(Booking.starts_at)))
