"""What a counter's console shows: its day (rows = resources, columns = the store's hours) and its
week (columns = days), today's arrivals, bookings waiting for the counter's confirmation, the
waiting list, today's no-shows, holds about to expire and today's holds. Reads only.

A handful of queries per board whatever the number of bookings (resources, the range's bookings,
the members' names, the waiting list, the holds), each scoped to one counter. Shoppers are shown
masked: an openid to its ends, a member's name to its first character.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select, union

from members.models import Member
from reservations import slots
from reservations.models import (
    Booking,
    GoodsHold,
    HoldableVariant,
    OpeningHours,
    Resource,
    Service,
    WaitlistEntry,
)
from reservations.states import (
    BOOKED,
    CHECKED_IN,
    HOLDING,
    NO_SHOW,
    OFFERED,
    REQUESTED,
    VISITED,
    WAITING,
)
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.logs import mask_openid

SHOWN = (REQUESTED, BOOKED, CHECKED_IN, NO_SHOW)  # on the grid; cancelled and moved ones are not
EXPIRING_WITHIN = timedelta(hours=2)


def shopper_label(openid: str, member_name: str | None = None) -> str:
    """Enough for staff to greet the right person, not enough to identify a shopper off screen."""
    masked = mask_openid(openid)
    if member_name:
        return f"{member_name[0]}{'*' * min(len(member_name) - 1, 2) or '*'} · {masked}"
    return masked


@dataclass(frozen=True)
class BookingLine:
    id: int
    code: str
    status: str
    starts_at: datetime
    ends_at: datetime
    service: str
    resource_id: int
    resource: str
    shopper: str
    out_trade_no: str | None
    checked_in_at: datetime | None

    @property
    def local_start(self) -> datetime:
        return self.starts_at.astimezone(slots.STORE_ZONE)


@dataclass(frozen=True)
class HoldLine:
    id: int
    code: str
    status: str
    visit_day: date
    expires_at: datetime
    item: str
    shopper: str
    out_trade_no: str | None
    visited_at: datetime | None


@dataclass(frozen=True)
class WaitLine:
    id: int
    service: str
    starts_at: datetime
    status: str
    shopper: str
    offered_until: datetime | None


@dataclass(frozen=True)
class ResourceRow:
    id: int
    name: str
    service: str


@dataclass
class DayBoard:
    counter: str
    day: date
    is_today: bool
    hours: slots.DayHours
    resources: list[ResourceRow]
    columns: list[int]  # store hours, 0-23
    grid: dict[tuple[int, int], list[BookingLine]]  # (resource id, hour) -> bookings starting then
    arrivals: list[BookingLine]
    requested: list[BookingLine]
    waitlist: list[WaitLine]
    no_shows: list[BookingLine]
    holds_expiring: list[HoldLine]
    holds_today: list[HoldLine]


@dataclass
class WeekBoard:
    counter: str
    days: list[date]
    resources: list[ResourceRow]
    grid: dict[tuple[int, date], list[BookingLine]] = field(default_factory=dict)


def counters() -> list[str]:
    """Every counter that has services, hours or holdable goods (what an admin may pick from)."""
    codes = db.session.scalars(union(select(Service.counter_code), select(HoldableVariant.counter_code),
                                     select(OpeningHours.counter_code))).all()
    return sorted(set(codes))


def _names(member_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {m for m in member_ids if m is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(Member.id, Member.name).where(Member.id.in_(ids))).all())


def _resources(counter: str) -> list[ResourceRow]:
    rows = db.session.execute(select(Resource.id, Resource.name, Service.name).join(
        Service, Service.id == Resource.service_id).where(Service.counter_code == counter, Resource.active.is_(True))
        .order_by(Service.name, Resource.name, Resource.id)).all()
    return [ResourceRow(rid, name, service) for rid, name, service in rows]


def _booking_lines(*where) -> list[BookingLine]:
    rows = db.session.execute(select(Booking, Service.name, Resource.name)
                              .join(Service, Service.id == Booking.service_id)
                              .join(Resource, Resource.id == Booking.resource_id)
                              .where(*where).order_by(Booking.starts_at, Booking.id)).all()
    names = _names(b.member_id for b, _s, _r in rows)
    return [BookingLine(b.id, b.visit_code or "", b.status, b.starts_at, b.ends_at, service, b.resource_id, resource,
                        shopper_label(b.openid, names.get(b.member_id)), b.out_trade_no, b.checked_in_at)
            for b, service, resource in rows]


def _hold_lines(*where) -> list[HoldLine]:
    rows = db.session.execute(select(GoodsHold, HoldableVariant).join(
        HoldableVariant, HoldableVariant.id == GoodsHold.variant_id).where(*where)
        .order_by(GoodsHold.expires_at, GoodsHold.id)).all()
    names = _names(h.member_id for h, _v in rows)
    return [HoldLine(h.id, h.visit_code or "", h.status, h.visit_day, h.expires_at,
                     f"{v.brand} {v.product} {v.variant}", shopper_label(h.openid, names.get(h.member_id)),
                     h.out_trade_no, h.visited_at) for h, v in rows]


def _waitlist(counter: str, since: datetime) -> list[WaitLine]:
    rows = db.session.execute(select(WaitlistEntry, Service.name).join(Service, Service.id == WaitlistEntry.service_id)
                              .where(Service.counter_code == counter, WaitlistEntry.status.in_((WAITING, OFFERED)),
                                     WaitlistEntry.starts_at >= since)
                              .order_by(WaitlistEntry.starts_at, WaitlistEntry.id)).all()
    names = _names(e.member_id for e, _s in rows)
    return [WaitLine(e.id, service, e.starts_at, e.status, shopper_label(e.openid, names.get(e.member_id)),
                     e.offered_until) for e, service in rows]


def _at_counter(counter: str):
    return Booking.service_id.in_(select(Service.id).where(Service.counter_code == counter))


def day_board(counter: str, day: date, now: datetime | None = None) -> DayBoard:
    """The counter's store day `day`, as its day page shows it."""
    now = now or utcnow()
    start = slots.store_midnight(day)
    bookings = _booking_lines(_at_counter(counter), Booking.starts_at >= start,
                              Booking.starts_at < start + timedelta(days=1), Booking.status.in_(SHOWN))
    hours = slots.hours_for(counter, [day])[day]
    shown_hours = set() if hours.closed else set(range(hours.opens // 60, (hours.closes + 59) // 60))
    shown_hours |= {b.local_start.hour for b in bookings}
    resources = _resources(counter)
    known = {r.id for r in resources}
    for b in bookings:  # a booking of a resource taken out of service still shows
        if b.resource_id not in known:
            resources.append(ResourceRow(b.resource_id, b.resource, b.service))
            known.add(b.resource_id)
    grid: dict[tuple[int, int], list[BookingLine]] = defaultdict(list)
    for b in bookings:
        grid[(b.resource_id, b.local_start.hour)].append(b)
    holds_at = GoodsHold.variant_id.in_(select(HoldableVariant.id).where(HoldableVariant.counter_code == counter))
    return DayBoard(
        counter=counter, day=day, is_today=day == slots.store_day(now), hours=hours, resources=resources,
        columns=sorted(shown_hours), grid=dict(grid),
        arrivals=[b for b in bookings if b.status in (BOOKED, CHECKED_IN)],
        requested=_booking_lines(_at_counter(counter), Booking.status == REQUESTED, Booking.starts_at > now),
        waitlist=_waitlist(counter, max(start, now)),
        no_shows=[b for b in bookings if b.status == NO_SHOW],
        holds_expiring=_hold_lines(holds_at, GoodsHold.status.in_(HOLDING), GoodsHold.expires_at > now,
                                   GoodsHold.expires_at <= now + EXPIRING_WITHIN),
        holds_today=_hold_lines(holds_at, GoodsHold.visit_day == day,
                                GoodsHold.status.in_(HOLDING + (VISITED,))),
    )


def week_board(counter: str, first: date) -> WeekBoard:
    """Seven store days from `first`: each resource's bookings per day."""
    days = [first + timedelta(days=n) for n in range(7)]
    start = slots.store_midnight(first)
    bookings = _booking_lines(_at_counter(counter), Booking.starts_at >= start,
                              Booking.starts_at < start + timedelta(days=7), Booking.status.in_(SHOWN))
    board = WeekBoard(counter, days, _resources(counter))
    known = {r.id for r in board.resources}
    for b in bookings:
        if b.resource_id not in known:
            board.resources.append(ResourceRow(b.resource_id, b.resource, b.service))
            known.add(b.resource_id)
        board.grid.setdefault((b.resource_id, b.local_start.date()), []).append(b)
    return board


def counter_of_booking(booking: Booking) -> str:
    return db.session.get(Service, booking.service_id).counter_code


def counter_of_hold(hold: GoodsHold) -> str:
    return db.session.get(HoldableVariant, hold.variant_id).counter_code


def describe_booking(booking: Booking) -> dict[str, object]:
    """A booking as the counter's scan answer and the till show it."""
    service = db.session.get(Service, booking.service_id)
    resource = db.session.get(Resource, booking.resource_id)
    name = _names([booking.member_id]).get(booking.member_id) if booking.member_id else None
    return {"kind": "booking", "id": booking.id, "code": booking.visit_code, "status": booking.status,
            "counter": service.counter_code, "what": f"{service.name} · {resource.name}",
            "when": booking.starts_at.astimezone(slots.STORE_ZONE).strftime("%Y-%m-%d %H:%M"),
            "shopper": shopper_label(booking.openid, name), "out_trade_no": booking.out_trade_no}


def describe_hold(hold: GoodsHold) -> dict[str, object]:
    variant = db.session.get(HoldableVariant, hold.variant_id)
    name = _names([hold.member_id]).get(hold.member_id) if hold.member_id else None
    return {"kind": "hold", "id": hold.id, "code": hold.visit_code, "status": hold.status,
            "counter": variant.counter_code, "what": f"{variant.brand} {variant.product} {variant.variant}",
            "when": hold.visit_day.isoformat(), "shopper": shopper_label(hold.openid, name),
            "out_trade_no": hold.out_trade_no}
