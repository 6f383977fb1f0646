"""Building blocks for the reservation tests: a counter with hours, a service with resources, a
holdable variant, and start times on the service's grid in store time."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sqlalchemy import select

from reservations import slots
from reservations.models import HoldableVariant, OpeningHours, Resource, Service, SlotUsage
from tests.integration.members_helpers import uow as _uow
from wx_service.ground.db import utcnow


@contextlib.contextmanager
def uow(app) -> Iterator:
    """One committed unit of work, then the notices it queued sent: with the embedded in-process
    queue, a notice job writing while the next unit of work reads would be SQLite's one writer."""
    with _uow(app) as session:
        yield session
    queue = app.extensions["wx"].queue
    if hasattr(queue, "wait_idle"):
        queue.wait_idle(timeout=15)


def counter_hours(app, counter: str = "LANCOME", opens: int = 0, closes: int = 1440,
                  weekdays: tuple[int, ...] = tuple(range(7))) -> None:
    """The counter's usual hours (minutes after the store's midnight) on the given weekdays."""
    with uow(app) as session:
        for weekday in weekdays:
            session.add(OpeningHours(counter_code=counter, weekday=weekday, opens=opens, closes=closes))


def service(app, capacity: int = 1, *, counter: str = "LANCOME", code: str = "facial", duration: int = 30,
            buffer: int = 10, lead: int = 60, horizon: int = 30, resources: int = 1,
            hours: bool = True) -> tuple[int, int]:
    """A service with `resources` resources of `capacity` each; (service id, first resource id).
    With `hours`, the counter is open round the clock every day (so any time on the grid is valid)."""
    if hours:
        counter_hours(app, counter)
    with uow(app) as session:
        made = Service(code=code, name="肌肤测试", counter_code=counter, duration_minutes=duration,
                       buffer_minutes=buffer, lead_minutes=lead, horizon_days=horizon)
        session.add(made)
        session.flush()
        first = None
        for n in range(resources):
            resource = Resource(service_id=made.id, name=f"{n + 1}号美容台", kind="station", capacity=capacity)
            session.add(resource)
            session.flush()
            first = first or resource.id
        return made.id, first


def on_grid(app, service_id: int, after: datetime | None = None, hours_ahead: float = 24) -> datetime:
    """The first start time of the service at least `hours_ahead` hours after `after` (now)."""
    target = (after or utcnow()) + timedelta(hours=hours_ahead)
    with uow(app) as session:
        made = session.get(Service, service_id)
        day = slots.store_day(target)
        for d in (day, day + timedelta(days=1), day + timedelta(days=2)):
            for start in slots.starts_between(made, d, d, slots.hours_for(made.counter_code, [d])):
                if start >= target:
                    return start
    raise AssertionError("no start time on the grid in the next three days")


def store_time(day: date, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return slots.at_store_time(day, h * 60 + m)


def variant(app, holdable: int, counter: str = "LANCOME") -> int:
    with uow(app) as session:
        item = HoldableVariant(counter_code=counter, brand="兰蔻", product="小黑瓶 50ml", variant="50ml",
                               holdable=holdable, held=0)
        session.add(item)
        session.flush()
        return item.id


def held(app, variant_id: int) -> int:
    with uow(app) as session:
        return session.get(HoldableVariant, variant_id).held


def used(app, resource_id: int) -> int:
    with uow(app) as session:
        return sum(session.scalars(select(SlotUsage.used).where(SlotUsage.resource_id == resource_id)))
