"""The waiting list of a full slot. Flushes, never commits.

A unit released at a slot that has shoppers waiting is not given back to the slot: it stays taken
and is offered to the first waiting shopper (a message with a link) for RESERVATION_OFFER_MINUTES.
They take it (bookings.take_offer), or the offer lapses and passes to the next, and only when
nobody waits does the unit go back to the slot. So a released unit can never be grabbed by a
passer-by while someone who asked first is being told about it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from reservations import capacity, events, notices
from reservations.exceptions import NotAllowed, UnknownReservation
from reservations.models import Service, WaitlistEntry
from reservations.states import LAPSED, LEFT, OFFERED, WAITING, WAITLIST_MOVES, allowed
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services


def subject(entry_id: int) -> str:
    return f"waitlist:{entry_id}"


def join(service: Service, starts_at: datetime, openid: str, *, member_id: int | None = None,
         now: datetime | None = None) -> WaitlistEntry:
    """Join the list of a slot (the caller has checked it is a real, full slot). Joining twice
    returns the first entry; a shopper who left may join again (at the back)."""
    now = now or utcnow()
    try:
        with db.session.begin_nested():
            entry = WaitlistEntry(service_id=service.id, starts_at=starts_at, openid=openid, member_id=member_id,
                                  status=WAITING, created_at=now, changed_at=now)
            db.session.add(entry)
            db.session.flush()
            events.waitlist_changed(entry)
            return entry
    except IntegrityError:
        entry = db.session.scalar(select(WaitlistEntry).where(
            WaitlistEntry.service_id == service.id, WaitlistEntry.starts_at == starts_at,
            WaitlistEntry.openid == openid))
        if entry is None:
            raise
        if entry.status in (LEFT, LAPSED):
            db.session.delete(entry)
            db.session.flush()
            return join(service, starts_at, openid, member_id=member_id, now=now)
        return entry


def _move(entry: WaitlistEntry, target: str, now: datetime, **values: object) -> bool:
    if not allowed(WAITLIST_MOVES, entry.status, target):
        raise NotAllowed(f"a {entry.status} place on the waiting list cannot become {target}")
    moved = bool(db.session.execute(update(WaitlistEntry).where(WaitlistEntry.id == entry.id,
                                                                WaitlistEntry.status == entry.status)
                                    .values(status=target, changed_at=now, **values)).rowcount)
    if moved:
        events.waitlist_changed(entry)
    return moved


def own(entry_id: int, openid: str | None) -> WaitlistEntry:
    entry = db.session.get(WaitlistEntry, entry_id, populate_existing=True)
    if entry is None or (openid is not None and entry.openid != openid):
        raise UnknownReservation(f"no waiting-list place {entry_id}")
    return entry


def leave(entry_id: int, openid: str, *, now: datetime | None = None) -> WaitlistEntry:
    """Leave the list; an offer held for the shopper passes on at once."""
    now = now or utcnow()
    entry = own(entry_id, openid)
    was_offered, resource_id = entry.status == OFFERED, entry.resource_id
    if not _move(entry, LEFT, now):
        raise NotAllowed("your place changed meanwhile; look again")
    if was_offered and resource_id is not None:
        release(entry.service_id, resource_id, entry.starts_at, now=now)
    return own(entry_id, None)


def release(service_id: int, resource_id: int, starts_at: datetime, *, now: datetime | None = None) -> WaitlistEntry | None:
    """A unit of this slot is free: offer it to the first shopper waiting (it stays taken), or give
    it back to the slot when nobody waits or the slot is too close to start. Returns the offer."""
    now = now or utcnow()
    minutes = services().settings.RESERVATION_OFFER_MINUTES
    if starts_at > now + timedelta(minutes=5):
        waiting = db.session.scalars(select(WaitlistEntry).where(
            WaitlistEntry.service_id == service_id, WaitlistEntry.starts_at == starts_at,
            WaitlistEntry.status == WAITING).order_by(WaitlistEntry.id).limit(5)).all()
        for entry in waiting:  # the first whose place did not change meanwhile
            until = min(now + timedelta(minutes=minutes), starts_at)
            if _move(entry, OFFERED, now, resource_id=resource_id, offered_until=until):
                notices.queue(subject(entry.id), "offer", entry.openid, now=now)  # an entry is offered once
                return own(entry.id, None)
    capacity.give_back_unit(resource_id, starts_at)
    return None


def lapse_due(now: datetime | None = None) -> int:
    """The sweep: each offer past its time lapses and its unit passes on (next shopper, or back to
    the slot). Each in a savepoint, so an offer taken meanwhile is skipped. Returns how many."""
    now = now or utcnow()
    due = db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.status == OFFERED,
                                                         WaitlistEntry.offered_until <= now)
                             .order_by(WaitlistEntry.id).limit(500)).all()
    lapsed = 0
    for entry in due:
        try:
            with db.session.begin_nested():
                if _move(entry, LAPSED, now):
                    release(entry.service_id, entry.resource_id, entry.starts_at, now=now)
                    lapsed += 1
        except NotAllowed:
            continue  # taken or left since this session first read it
    return lapsed


def position(entry: WaitlistEntry) -> int:
    """1 for the first shopper still waiting for the slot."""
    if entry.status != WAITING:
        return 0
    ahead = db.session.scalars(select(WaitlistEntry.id).where(
        WaitlistEntry.service_id == entry.service_id, WaitlistEntry.starts_at == entry.starts_at,
        WaitlistEntry.status == WAITING, WaitlistEntry.id < entry.id)).all()
    return len(ahead) + 1
