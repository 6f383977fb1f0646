"""Service appointments: one unit of one resource's capacity at one start time. Flushes, never
commits.

The unit is taken by a guarded UPDATE of the slot's usage row (`used < capacity`), created on
first use (a concurrent creator's duplicate is dropped by the unique key), in the same savepoint
as the booking's INSERT. Of five hundred shoppers booking a slot of three at once, exactly three
get it; a retried tap (same idempotency key) returns the first booking.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from reservations.exceptions import NotAllowed, SoldOut, UnknownReservation
from reservations.models import Booking, Resource, Service, SlotUsage
from reservations.states import BOOKED, BOOKING_MOVES, CANCELLED, OCCUPYING, RESCHEDULED, allowed
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db


def _by_key(openid: str, idempotency_key: str) -> Booking | None:
    return db.session.scalar(select(Booking).where(Booking.openid == openid,
                                                   Booking.idempotency_key == idempotency_key))


def _ensure_usage(resource: Resource, starts_at: datetime) -> None:
    try:
        with db.session.begin_nested():
            db.session.add(SlotUsage(resource_id=resource.id, starts_at=starts_at, capacity=resource.capacity, used=0))
            db.session.flush()
    except IntegrityError:
        pass  # another booking made it first: the row is there


def book(service_id: int, resource_id: int, starts_at: datetime, openid: str, idempotency_key: str, *,
         member_id: int | None = None, previous_id: int | None = None, now: datetime | None = None) -> Booking:
    """Book one unit of the resource at `starts_at`. SoldOut when the slot is full; the same key
    again returns the first booking."""
    found = _by_key(openid, idempotency_key)
    if found is not None:
        return found
    now = now or utcnow()
    service = db.session.get(Service, service_id)
    resource = db.session.get(Resource, resource_id)
    if service is None or resource is None or resource.service_id != service.id:
        raise UnknownReservation("no such service at that resource")
    if starts_at <= now:
        raise NotAllowed("that time has passed")
    try:
        with db.session.begin_nested():
            _ensure_usage(resource, starts_at)
            took = db.session.execute(update(SlotUsage).where(
                SlotUsage.resource_id == resource.id, SlotUsage.starts_at == starts_at,
                SlotUsage.used < SlotUsage.capacity).values(used=SlotUsage.used + 1)).rowcount
            if not took:
                raise SoldOut("this time is full; pick another, or join the waiting list")
            new = Booking(service_id=service.id, resource_id=resource.id, starts_at=starts_at,
                          ends_at=starts_at + timedelta(minutes=service.duration_minutes), openid=openid,
                          member_id=member_id, idempotency_key=idempotency_key, status=BOOKED,
                          previous_id=previous_id, created_at=now, changed_at=now)
            db.session.add(new)
            db.session.flush()
    except IntegrityError:  # the same tap, retried at the same moment: its twin won
        found = _by_key(openid, idempotency_key)
        if found is None:
            raise
        return found
    return new


def _move(booking: Booking, target: str, now: datetime, reason: str = "") -> None:
    source = booking.status
    if not allowed(BOOKING_MOVES, source, target):
        raise NotAllowed(f"a {source} booking cannot become {target}")
    moved = db.session.execute(update(Booking).where(Booking.id == booking.id, Booking.status == source)
                               .values(status=target, changed_at=now, cancel_reason=reason)).rowcount
    if not moved:
        raise NotAllowed(f"booking {booking.id} changed meanwhile; look again")
    if source in OCCUPYING and target not in OCCUPYING:
        db.session.execute(update(SlotUsage).where(SlotUsage.resource_id == booking.resource_id,
                                                   SlotUsage.starts_at == booking.starts_at, SlotUsage.used > 0)
                           .values(used=SlotUsage.used - 1))


def _own(booking_id: int, openid: str | None) -> Booking:
    booking = db.session.get(Booking, booking_id, populate_existing=True)
    if booking is None or (openid is not None and booking.openid != openid):
        raise UnknownReservation(f"no booking {booking_id}")  # a tampered id: as if none
    return booking


def cancel(booking_id: int, reason: str, *, openid: str | None = None, now: datetime | None = None) -> Booking:
    """Cancel with a reason; the unit goes back to the slot."""
    booking = _own(booking_id, openid)
    _move(booking, CANCELLED, now or utcnow(), reason.strip()[:500])
    return _own(booking_id, None)


def reschedule(booking_id: int, starts_at: datetime, idempotency_key: str, *, openid: str | None = None,
               now: datetime | None = None) -> Booking:
    """Book the new time first, then release the old one; the new booking points back to it. If
    the new time is full, the old booking stands."""
    now = now or utcnow()
    old = _own(booking_id, openid)
    if old.status != BOOKED:
        raise NotAllowed(f"a {old.status} booking cannot be moved")
    new = book(old.service_id, old.resource_id, starts_at, old.openid, idempotency_key,
               member_id=old.member_id, previous_id=old.id, now=now)
    if new.previous_id == old.id and _own(booking_id, None).status == BOOKED:
        _move(old, RESCHEDULED, now)
    return new
