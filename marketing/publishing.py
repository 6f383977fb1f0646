"""Publishing activities, new arrivals and discounts: now, on a schedule, and taking them down.

States (marketing.models): draft -> scheduled (publish_at waits) -> published -> unpublished, and
published or scheduled -> unpublished by hand; an unpublished item may be published or scheduled
again. A published item with `unpublish_at` is taken down by the scheduler at that time.

Every move is a compare-and-swap on `status` (UPDATE ... WHERE id = ? AND status = <as read>), so
two scheduler runs at once, or a staff click racing the scheduler, move an item once: the loser
updates no row and does nothing more. Every transition to published goes through
`mark_published`, the one place that learns an item went live (the brand's subscribers are told
from there). Staff moves are audited as content.<noun>.publish / .schedule / .unpublish; the
scheduler's as the same actions with no staff member and detail "scheduler". Flushes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from marketing import announcements, editing
from marketing.editing import BadValue
from marketing.exceptions import InvalidContent, NotAllowed, UnknownContent
from marketing.models import DRAFT, PUBLISHED, SCHEDULED, UNPUBLISHED, Activity, Discount, NewArrival
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

# noun (as in audit actions and subjects) -> model
PUBLISHABLE: dict[str, type] = {"activity": Activity, "new_arrival": NewArrival, "discount": Discount}
SCHEDULER = "scheduler"
BATCH = 200

Item = Activity | NewArrival | Discount


def noun_of(item: Any) -> str:
    for noun, model in PUBLISHABLE.items():
        if isinstance(item, model):
            return noun
    raise TypeError(f"{type(item).__name__} is not published content")


def item_for(noun: str, ident: int) -> Item:
    model = PUBLISHABLE.get(noun)
    if model is None:
        raise UnknownContent(f"{noun} is not one of {', '.join(PUBLISHABLE)}")
    return editing.fetch(model, ident, noun.replace("_", " "))


def _swap(item: Item, expected: str, **values: Any) -> bool:
    """One guarded UPDATE: the new values only if the status is still `expected`. The item in the
    session is updated too when it wins."""
    model = type(item)
    won = db.session.execute(update(model).where(model.id == item.id, model.status == expected).values(**values)
                             .execution_options(synchronize_session="fetch")).rowcount
    return bool(won)


# What goes out to a brand's subscribers when it goes live (marketing.announcements): a new
# arrival, an activity (to each of its brands' subscribers); a discount does not.
ANNOUNCED_KINDS = {NewArrival: "new_arrival", Activity: "activity"}


def mark_published(item: Item, now: datetime) -> bool:
    """Make `item` published if its status is still what it was read as. True if this call did it
    (False: someone else moved it first, or it already was published). The one way in to
    `published`: whatever must follow an item going live is called from here."""
    expected = item.status
    if expected == PUBLISHED:
        return False
    if not _swap(item, expected, status=PUBLISHED, published_at=now):
        return False
    if isinstance(item, (NewArrival, Activity)):
        # Its brands' subscribers hear of it, once per item (a re-publish announces nothing).
        announcements.announce(ANNOUNCED_KINDS[type(item)], item.id, now=now)
    return True


def _state(item: Item) -> dict[str, Any]:
    return {"status": item.status, "publish_at": editing.plain(item.publish_at),
            "unpublish_at": editing.plain(item.unpublish_at)}


def _moved(item: Item, verb: str, before: dict[str, Any], staff_id: int | None, detail: str = "") -> None:
    after = _state(item)
    changed = [key for key in after if before.get(key) != after[key]]
    editing.audited(staff_id, noun_of(item), verb, item.id, {k: before[k] for k in changed},
                    {k: after[k] for k in changed}, detail)


def _changed_meanwhile(item: Item) -> NotAllowed:
    return NotAllowed(f"this {noun_of(item).replace('_', ' ')} changed meanwhile; reload and try again")


def publish_now(noun: str, ident: int, *, staff_id: int | None, now: datetime | None = None) -> Item:
    """Publish at once (a draft, a scheduled or an unpublished item). Refused when it is already
    published or its unpublish time has passed."""
    now = now or utcnow()
    item = item_for(noun, ident)
    if item.status == PUBLISHED:
        raise NotAllowed("it is published already")
    if item.unpublish_at is not None and item.unpublish_at <= now:
        raise NotAllowed("its unpublish time has passed; schedule a later one first")
    before = _state(item)
    if item.publish_at is not None:
        if not _swap(item, item.status, publish_at=None):
            raise _changed_meanwhile(item)
    if not mark_published(item, now):
        raise _changed_meanwhile(item)
    _moved(item, "publish", before, staff_id)
    return item


def schedule(noun: str, ident: int, *, publish_at: Any = None, unpublish_at: Any = None, staff_id: int | None,
             now: datetime | None = None) -> Item:
    """Publish at `publish_at` and/or take down at `unpublish_at` (instants with their zone).
    A published item takes only an unpublish time; a draft or unpublished one needs a publish
    time. Both must be in the future, the unpublish after the publish."""
    now = now or utcnow()
    item = item_for(noun, ident)
    errors: dict[str, str] = {}
    times: dict[str, datetime | None] = {}
    for name, value in (("publish_at", publish_at), ("unpublish_at", unpublish_at)):
        try:
            times[name] = editing.parse_moment(value)
        except BadValue as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidContent(errors)
    start, end = times["publish_at"], times["unpublish_at"]
    if start is None and end is None:
        raise InvalidContent({"publish_at": "give a publish time, an unpublish time, or both"})
    if start is not None and start <= now:
        errors["publish_at"] = "is in the future (to publish at once, use publish)"
    if end is not None and end <= now:
        errors["unpublish_at"] = "is in the future"
    if end is not None and end <= (start or item.publish_at or now):
        errors.setdefault("unpublish_at", "is after the publish time")
    if errors:
        raise InvalidContent(errors)
    if start is not None and item.status == PUBLISHED:
        raise NotAllowed("it is published already: set only an unpublish time, or unpublish it first")
    if start is None and item.status in (DRAFT, UNPUBLISHED):
        raise NotAllowed("it is not published: give a publish time too, or publish it now")
    before = _state(item)
    values: dict[str, Any] = {"unpublish_at": end}
    if start is not None:
        values.update(status=SCHEDULED, publish_at=start)
    if not _swap(item, item.status, **values):
        raise _changed_meanwhile(item)
    _moved(item, "schedule", before, staff_id)
    return item


def unpublish(noun: str, ident: int, *, staff_id: int | None) -> Item:
    """Take a published item down, or call off a scheduled one; it keeps its content."""
    item = item_for(noun, ident)
    if item.status not in (PUBLISHED, SCHEDULED):
        raise NotAllowed(f"it is {item.status}, not published or scheduled")
    before = _state(item)
    if not _swap(item, item.status, status=UNPUBLISHED, publish_at=None, unpublish_at=None):
        raise _changed_meanwhile(item)
    _moved(item, "unpublish", before, staff_id)
    return item


def run_due(now: datetime | None = None) -> dict[str, int]:
    """The scheduler's sweep: publish scheduled items whose time came, take down published items
    whose unpublish time came (a scheduled item whose unpublish time passed before it ever went
    live goes straight to unpublished). Idempotent: each move is a compare-and-swap, so a second
    run, or two at once, move nothing twice. Answers how many it moved."""
    now = now or utcnow()
    counts = {"published": 0, "unpublished": 0}
    for noun, model in PUBLISHABLE.items():
        due = db.session.scalars(select(model).where(model.status == SCHEDULED, model.publish_at <= now)
                                 .order_by(model.publish_at, model.id).limit(BATCH)
                                 .execution_options(populate_existing=True)).all()
        for item in due:
            before = _state(item)
            if item.unpublish_at is not None and item.unpublish_at <= now:
                if _swap(item, SCHEDULED, status=UNPUBLISHED):
                    _moved(item, "unpublish", before, None, SCHEDULER)
                    counts["unpublished"] += 1
            elif mark_published(item, now):
                _moved(item, "publish", before, None, SCHEDULER)
                counts["published"] += 1
        expired = db.session.scalars(select(model).where(model.status == PUBLISHED, model.unpublish_at <= now)
                                     .order_by(model.unpublish_at, model.id).limit(BATCH)
                                     .execution_options(populate_existing=True)).all()
        for item in expired:
            before = _state(item)
            if _swap(item, PUBLISHED, status=UNPUBLISHED):
                _moved(item, "unpublish", before, None, SCHEDULER)
                counts["unpublished"] += 1
    return counts
