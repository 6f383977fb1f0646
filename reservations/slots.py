"""Which start times a service offers: generated from the counter's hours (with the day's
exception, if any), the service's duration and buffer, its lead time and its horizon. Pure
functions over plain values, plus one loader that reads the hours of a range of days in two
queries.

Times are the store's (Asia/Shanghai, UTC+8 all year: no daylight saving) and are handed back in
UTC, which is how they are stored. A slot starts every duration + buffer minutes from opening and
must end (without its buffer) by closing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from reservations.exceptions import BadTime
from reservations.models import HoursException, OpeningHours, Service
from wx_service.ground.extensions import db

STORE_ZONE = ZoneInfo("Asia/Shanghai")
ALL_COUNTERS = "*"


@dataclass(frozen=True)
class DayHours:
    """A counter's hours on one store day, in minutes after midnight; None: closed."""

    opens: int | None
    closes: int | None
    note: str = ""

    @property
    def closed(self) -> bool:
        return self.opens is None or self.closes is None


CLOSED = DayHours(None, None)


def store_day(at: datetime) -> date:
    """The store's calendar day of an instant (a booking at 23:30 store time is that day's, even
    though it is 15:30 UTC)."""
    return at.astimezone(STORE_ZONE).date()


def store_midnight(day: date) -> datetime:
    """The first instant of a store day, in UTC."""
    return datetime.combine(day, time(0), STORE_ZONE).astimezone(timezone.utc)


def at_store_time(day: date, minutes: int) -> datetime:
    return store_midnight(day) + timedelta(minutes=minutes)


def day_starts(service: Service, hours: DayHours, day: date) -> list[datetime]:
    """Every start time of the service on that store day, before lead time and horizon."""
    if hours.closed:
        return []
    step = service.duration_minutes + (service.buffer_minutes or 0)
    starts, minute = [], hours.opens
    while minute + service.duration_minutes <= hours.closes:
        starts.append(at_store_time(day, minute))
        minute += step
    return starts


def bookable_window(service: Service, now: datetime) -> tuple[datetime, datetime]:
    """[earliest, latest] start a shopper may book now: `lead_minutes` from now, to the end of the
    store day `horizon_days` ahead."""
    earliest = now + timedelta(minutes=service.lead_minutes)
    latest = store_midnight(store_day(now) + timedelta(days=service.horizon_days + 1)) - timedelta(microseconds=1)
    return earliest, latest


def hours_for(counter_code: str, days: Iterable[date]) -> dict[date, DayHours]:
    """The hours of a counter on each of `days`: the day's exception (the counter's own first,
    then the store-wide one) or else the weekday's usual hours; closed when neither exists."""
    days = sorted(set(days))
    if not days:
        return {}
    usual = {row.weekday: DayHours(row.opens, row.closes) for row in db.session.scalars(
        select(OpeningHours).where(OpeningHours.counter_code == counter_code))}
    exceptions: dict[tuple[str, date], DayHours] = {
        (row.counter_code, row.day): DayHours(row.opens, row.closes, row.note) for row in db.session.scalars(
            select(HoursException).where(HoursException.counter_code.in_((counter_code, ALL_COUNTERS)),
                                         HoursException.day.between(days[0], days[-1])))}
    return {day: _pick(day, counter_code, usual, exceptions) for day in days}


def _pick(day: date, counter_code: str, usual: Mapping[int, DayHours],
          exceptions: Mapping[tuple[str, date], DayHours]) -> DayHours:
    return exceptions.get((counter_code, day)) or exceptions.get((ALL_COUNTERS, day)) or usual.get(day.weekday(), CLOSED)


def starts_between(service: Service, first: date, last: date, hours: Mapping[date, DayHours]) -> list[datetime]:
    """All start times of the service from store day `first` to `last`, both included."""
    out: list[datetime] = []
    day = first
    while day <= last:
        out.extend(day_starts(service, hours.get(day, CLOSED), day))
        day += timedelta(days=1)
    return out


def check_start(service: Service, starts_at: datetime, now: datetime, hours: DayHours) -> None:
    """Refuse a start time that is past, inside the lead time, beyond the horizon, outside the
    counter's hours or not on the service's grid; the message names which."""
    if starts_at.tzinfo is None:
        raise BadTime("the time must carry its zone offset (e.g. 2026-12-05T14:00:00+08:00)")
    if starts_at <= now:
        raise BadTime("that time has passed")
    earliest, latest = bookable_window(service, now)
    if starts_at < earliest:
        raise BadTime(f"{service.name} must be booked at least {service.lead_minutes} minutes ahead")
    if starts_at > latest:
        raise BadTime(f"{service.name} can be booked at most {service.horizon_days} days ahead")
    day = store_day(starts_at)
    if hours.closed:
        raise BadTime(f"the counter is closed on {day.isoformat()}" + (f" ({hours.note})" if hours.note else ""))
    if starts_at not in day_starts(service, hours, day):
        local = starts_at.astimezone(STORE_ZONE).strftime("%H:%M")
        raise BadTime(f"{local} is not a start time of {service.name} on {day.isoformat()} "
                          f"(open {hours.opens // 60:02d}:{hours.opens % 60:02d}-{hours.closes // 60:02d}:"
                          f"{hours.closes % 60:02d}, every {service.duration_minutes + service.buffer_minutes} minutes)")
