"""Defining what can be booked, as an operator (the CLI) or the demo loader does: services, the
resources that serve them, a counter's weekly hours and the days that differ. Every function is
an upsert keyed by the natural key (service code, service + resource name, counter + weekday,
counter + day), so running the same set-up twice changes nothing. Flushes, never commits.

Hours are written the way a store writes them on its door: "Mon-Fri 10:00-22:00; Sat,Sun
10:00-23:00", "daily 10:00-22:00", "Sun closed". Times are store time (Asia/Shanghai); 24:00
closes at midnight.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, select

from reservations.exceptions import ReservationError
from reservations.models import HoursException, OpeningHours, Resource, Service
from reservations.slots import ALL_COUNTERS
from wx_service.ground.extensions import db

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RESOURCE_KINDS = ("staff", "station", "room")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


class SetupError(ReservationError):
    """A definition that cannot be stored as asked; the message says what to change."""


def _code(value: str, what: str) -> str:
    if not _CODE.match(value or ""):
        raise SetupError(f"a {what} code is 1-32 letters, digits, _ or - (got {value!r})")
    return value


def _name(value: str, what: str, longest: int = 64) -> str:
    value = (value or "").strip()
    if not value or len(value) > longest:
        raise SetupError(f"a {what} name is 1-{longest} characters")
    return value


def minutes_of(hhmm: str) -> int:
    """'10:30' -> 630; '24:00' -> 1440 (closing at midnight)."""
    found = _HHMM.match(hhmm.strip())
    if not found or (int(found.group(1)) == 24 and found.group(2) != "00"):
        raise SetupError(f"{hhmm!r} is not a time of day (HH:MM, 00:00 to 24:00)")
    return int(found.group(1)) * 60 + int(found.group(2))


def parse_span(text: str) -> tuple[int | None, int | None]:
    """'closed' -> (None, None); '10:00-22:00' -> (600, 1320). Opening must come before closing."""
    text = text.strip().lower()
    if text == "closed":
        return None, None
    opens_text, sep, closes_text = text.partition("-")
    if not sep:
        raise SetupError(f"{text!r} is neither 'closed' nor HH:MM-HH:MM")
    opens, closes = minutes_of(opens_text), minutes_of(closes_text)
    if opens >= closes:
        raise SetupError(f"{text}: opening must come before closing, on the same store day (at most 24:00)")
    return opens, closes


def parse_days(text: str) -> list[int]:
    """'Mon-Fri' -> [0..4]; 'Sat,Sun' -> [5, 6]; 'daily' -> every day; 'Fri-Mon' wraps the week."""
    text = text.strip().lower()
    if text in ("daily", "everyday", "all"):
        return list(range(7))
    days: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, sep, last = part.partition("-")
        try:
            a = WEEKDAYS.index(first.strip()[:3])
            b = WEEKDAYS.index(last.strip()[:3]) if sep else a
        except ValueError:
            raise SetupError(f"{part!r} is not a weekday or range of weekdays (Mon, Tue-Fri, Sat,Sun)") from None
        span = [(a + i) % 7 for i in range((b - a) % 7 + 1)]
        days.extend(d for d in span if d not in days)
    if not days:
        raise SetupError("name the weekdays: Mon-Fri, Sat,Sun or daily")
    return days


def parse_hours(spec: str) -> dict[int, tuple[int | None, int | None]]:
    """'Mon-Fri 10:00-22:00; Sat,Sun 10:00-23:00' -> {weekday: (opens, closes)}. A later group
    overrides an earlier one for the days they share."""
    week: dict[int, tuple[int | None, int | None]] = {}
    for group in (g.strip() for g in spec.split(";") if g.strip()):
        days_text, _, span_text = group.rpartition(" ")
        if not days_text.strip():
            raise SetupError(f"{group!r}: write the days, then the hours (e.g. 'Mon-Fri 10:00-22:00')")
        span = parse_span(span_text)
        for day in parse_days(days_text):
            week[day] = span
    if not week:
        raise SetupError("no hours given (e.g. 'Mon-Fri 10:00-22:00; Sat,Sun 10:00-23:00')")
    return week


def define_service(code: str, name: str, counter: str, duration: int, buffer: int = 0, lead: int = 60,
                   horizon: int = 30, description: str = "") -> tuple[Service, bool]:
    """Add the service, or change the one with this code; (service, whether it was new)."""
    _code(code, "service")
    if counter == ALL_COUNTERS:
        raise SetupError("a service belongs to one counter")
    _code(counter, "counter")
    if not 5 <= duration <= 720:
        raise SetupError("a service lasts 5 to 720 minutes")
    if not 0 <= buffer <= 240:
        raise SetupError("the buffer after a service is 0 to 240 minutes")
    if not 0 <= lead <= 30 * 1440:
        raise SetupError("the lead time is 0 minutes to 30 days")
    if not 0 <= horizon <= 365:
        raise SetupError("the horizon is 0 (today only) to 365 days")
    values = {"name": _name(name, "service"), "counter_code": counter, "duration_minutes": duration,
              "buffer_minutes": buffer, "lead_minutes": lead, "horizon_days": horizon,
              "description": description or ""}
    found = db.session.scalar(select(Service).where(Service.code == code))
    if found is None:
        found = Service(code=code, active=True, **values)
        db.session.add(found)
        db.session.flush()
        return found, True
    for key, value in values.items():
        setattr(found, key, value)
    db.session.flush()
    return found, False


def service_by_code(code: str) -> Service:
    found = db.session.scalar(select(Service).where(Service.code == code))
    if found is None:
        raise SetupError(f"no service {code}; add it first (reservations service-add)")
    return found


def define_resource(service_code: str, name: str, kind: str = "staff", capacity: int = 1) -> tuple[Resource, bool]:
    """Add a resource to a service, or change the one of that name; (resource, whether it was
    new). A new capacity applies to start times nobody has booked yet."""
    service = service_by_code(service_code)
    if kind not in RESOURCE_KINDS:
        raise SetupError(f"a resource is one of {', '.join(RESOURCE_KINDS)}")
    if not 1 <= capacity <= 100_000:
        raise SetupError("a resource serves 1 to 100000 shoppers at once")
    name = _name(name, "resource")
    found = db.session.scalar(select(Resource).where(Resource.service_id == service.id, Resource.name == name))
    if found is None:
        found = Resource(service_id=service.id, name=name, kind=kind, capacity=capacity, active=True)
        db.session.add(found)
        db.session.flush()
        return found, True
    found.kind, found.capacity, found.active = kind, capacity, True
    db.session.flush()
    return found, False


def set_hours(counter: str, spec: str) -> dict[int, tuple[int | None, int | None]]:
    """Set the counter's usual hours on the weekdays the spec names (others are left as they
    are); a day written 'closed' loses its hours. Returns what was set."""
    if counter == ALL_COUNTERS:
        raise SetupError("usual hours belong to one counter; for the whole store use an exception day with *")
    _code(counter, "counter")
    week = parse_hours(spec)
    existing = {row.weekday: row for row in db.session.scalars(
        select(OpeningHours).where(OpeningHours.counter_code == counter))}
    for weekday, (opens, closes) in sorted(week.items()):
        row = existing.get(weekday)
        if opens is None:
            if row is not None:
                db.session.execute(delete(OpeningHours).where(OpeningHours.id == row.id))
        elif row is None:
            db.session.add(OpeningHours(counter_code=counter, weekday=weekday, opens=opens, closes=closes))
        else:
            row.opens, row.closes = opens, closes
    db.session.flush()
    return week


def week_of(counter: str) -> dict[int, tuple[int, int]]:
    """The counter's usual hours: {weekday: (opens, closes)}; a weekday not in it is closed."""
    return {row.weekday: (row.opens, row.closes) for row in db.session.scalars(
        select(OpeningHours).where(OpeningHours.counter_code == counter))}


def set_exception(counter: str, day: date, span: str, note: str = "") -> tuple[HoursException, bool]:
    """One day that differs for a counter (or for every counter: '*'): 'closed' or its own
    HH:MM-HH:MM. A counter's own exception wins over the store's on the same day."""
    if counter != ALL_COUNTERS:
        _code(counter, "counter")
    opens, closes = parse_span(span)
    note = (note or "").strip()
    if len(note) > 64:
        raise SetupError("the note is at most 64 characters")
    found = db.session.scalar(select(HoursException).where(HoursException.counter_code == counter,
                                                           HoursException.day == day))
    if found is None:
        found = HoursException(counter_code=counter, day=day, opens=opens, closes=closes, note=note)
        db.session.add(found)
        db.session.flush()
        return found, True
    found.opens, found.closes, found.note = opens, closes, note
    db.session.flush()
    return found, False


def hhmm(minutes: int | None) -> str:
    return "" if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class CounterSetup:
    """What a counter offers, for the `list` command and the console: its services with their
    resources, its usual week and its exception days from `since` on."""

    counter: str
    services: list[tuple[Service, list[Resource]]]
    week: dict[int, tuple[int, int]]
    exceptions: list[HoursException]


def catalogue(since: date) -> list[CounterSetup]:
    """Every counter that has services, hours or exceptions; store-wide exceptions under '*'."""
    services = db.session.scalars(select(Service).order_by(Service.counter_code, Service.code)).all()
    resources = db.session.scalars(select(Resource).order_by(Resource.id)).all()
    hours = db.session.scalars(select(OpeningHours).order_by(OpeningHours.weekday)).all()
    exceptions = db.session.scalars(select(HoursException).where(HoursException.day >= since)
                                    .order_by(HoursException.day)).all()
    counters = sorted({s.counter_code for s in services} | {h.counter_code for h in hours}
                      | {e.counter_code for e in exceptions})
    return [CounterSetup(
        counter=code,
        services=[(s, [r for r in resources if r.service_id == s.id]) for s in services if s.counter_code == code],
        week={h.weekday: (h.opens, h.closes) for h in hours if h.counter_code == code},
        exceptions=[e for e in exceptions if e.counter_code == code]) for code in counters]
