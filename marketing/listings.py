"""What shoppers may see of the store's content, read side only (the OA replies, the mini-program
API and the H5 pages all read through here, so they agree on what is "visible now").

An activity, new arrival or discount is visible when it is published, its publish_at (if any) has
come and its unpublish_at (if any) has not: the scheduler flips the status at those times, but a
reader never depends on the scheduler having run yet. Days and weeks are the store's
(Asia/Shanghai): the week is Monday to Sunday. Reads only: never flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from marketing.models import PUBLISHED, Activity, ActivityBrand, Brand, Discount, NewArrival, Store, StoreHoursException
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

STORE_ZONE = ZoneInfo("Asia/Shanghai")
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTENT_IMAGES = "/content/images"  # where an uploaded image is served (the content console's route)
MAX_BRANDS_SCANNED = 2000  # a store has hundreds of brands; the category filter runs over them in Python

P = TypeVar("P", Activity, NewArrival, Discount)


def image_path(image_id: int | None) -> str:
    """The one place that knows where a content image is served: "" for no image."""
    return f"{CONTENT_IMAGES}/{image_id}" if image_id else ""


# -- time ------------------------------------------------------------------------------------------

def store_day(at: datetime | None = None) -> date:
    """The store's calendar day at `at` (now by default)."""
    return (at or utcnow()).astimezone(STORE_ZONE).date()


def day_start(day: date) -> datetime:
    """The store's midnight starting `day`, in UTC."""
    return datetime.combine(day, time(0), STORE_ZONE).astimezone(timezone.utc)


def week_of(at: datetime | None = None) -> tuple[datetime, datetime]:
    """The store-week (Monday 00:00 to the next Monday 00:00, store time) holding `at`, in UTC."""
    today = store_day(at)
    monday = today - timedelta(days=today.weekday())
    return day_start(monday), day_start(monday + timedelta(days=7))


def visible(model: type[P], now: datetime | None = None) -> Any:
    """The WHERE clause of "a shopper may see it now"."""
    now = now or utcnow()
    return and_(model.status == PUBLISHED,
                or_(model.publish_at.is_(None), model.publish_at <= now),
                or_(model.unpublish_at.is_(None), model.unpublish_at > now))


# -- activities ------------------------------------------------------------------------------------

def activities_this_week(now: datetime | None = None, limit: int | None = None) -> list[Activity]:
    """Visible activities overlapping this store-week, soonest first."""
    now = now or utcnow()
    start, end = week_of(now)
    query = (select(Activity).where(visible(Activity, now), Activity.starts_at < end, Activity.ends_at > start)
             .order_by(Activity.starts_at, Activity.id))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def activities(*, brand_id: int | None = None, store_id: int | None = None, from_day: date | None = None,
               to_day: date | None = None, limit: int = 20, offset: int = 0, now: datetime | None = None,
               count: bool = True) -> tuple[list[Activity], int | None]:
    """One page of visible activities (soonest first) and how many there are in all (None without
    `count`: one query fewer). With no days given, those not yet over; `from_day`/`to_day` (store
    days, inclusive) keep those overlapping."""
    now = now or utcnow()
    where = [visible(Activity, now)]
    if from_day is None and to_day is None:
        where.append(Activity.ends_at > now)
    if from_day is not None:
        where.append(Activity.ends_at > day_start(from_day))
    if to_day is not None:
        where.append(Activity.starts_at < day_start(to_day + timedelta(days=1)))
    if store_id is not None:
        where.append(Activity.store_id == store_id)
    if brand_id is not None:
        where.append(Activity.id.in_(select(ActivityBrand.activity_id).where(ActivityBrand.brand_id == brand_id)))
    total = (db.session.scalar(select(func.count()).select_from(Activity).where(*where)) or 0) if count else None
    page = db.session.scalars(select(Activity).where(*where).order_by(Activity.starts_at, Activity.id)
                              .limit(limit).offset(offset))
    return list(page), total


def activity(activity_id: int, now: datetime | None = None) -> Activity | None:
    """One activity if a shopper may see it (an unpublished one is as good as unknown)."""
    return db.session.scalar(select(Activity).where(Activity.id == activity_id, visible(Activity, now)))


def brands_of_activities(activity_ids: Iterable[int]) -> dict[int, list[Brand]]:
    """Each activity's brands (by name), in one query."""
    wanted = set(activity_ids)
    found: dict[int, list[Brand]] = {i: [] for i in wanted}
    if wanted:
        rows = db.session.execute(select(ActivityBrand.activity_id, Brand).join(Brand, Brand.id == ActivityBrand.brand_id)
                                  .where(ActivityBrand.activity_id.in_(wanted)).order_by(Brand.name))
        for activity_id, brand in rows:
            found[activity_id].append(brand)
    return found


# -- brands ----------------------------------------------------------------------------------------

def brand(brand_id: int) -> Brand | None:
    """An active brand by id."""
    return db.session.scalar(select(Brand).where(Brand.id == brand_id, Brand.active.is_(True)))


def find_brand(name: str) -> Brand | None:
    """The active brand a shopper means by `name`: its Chinese or English name, any case, or a
    prefix of one that only one brand has ("lanc" for Lancôme's "Lancome"). One query."""
    wanted = " ".join(name.split()).lower()
    if not wanted or not wanted.isprintable() or len(wanted) > 64:
        return None
    pattern = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    candidates = list(db.session.scalars(
        select(Brand).where(Brand.active.is_(True), or_(func.lower(Brand.name).like(pattern, escape="\\"),
                                                        func.lower(Brand.name_en).like(pattern, escape="\\")))
        .order_by(Brand.id).limit(20)))
    exact = [b for b in candidates if wanted in (b.name.lower(), (b.name_en or "").lower())]
    if exact:
        return exact[0]
    return candidates[0] if len(candidates) == 1 else None


def brand_names(limit: int = 8) -> list[str]:
    """A few brand names to suggest when a shopper's brand is not found."""
    return list(db.session.scalars(select(Brand.name).where(Brand.active.is_(True))
                                   .order_by(Brand.name, Brand.id).limit(limit)))


@dataclass(frozen=True)
class BrandPage:
    brands: list[Brand]
    total: int
    next_after: tuple[str, int] | None  # the (name, id) to continue after, for a cursor


def brands(*, category: str | None = None, floor: str | None = None, store_id: int | None = None,
           limit: int = 20, offset: int = 0, after: tuple[str, int] | None = None) -> BrandPage:
    """Active brands by name, filtered; a page by offset or after a (name, id) cursor. Categories
    are a JSON list, matched exactly (any case) in Python over the filtered brands."""
    query = select(Brand).where(Brand.active.is_(True))
    if floor:
        query = query.where(Brand.floor == floor)
    if store_id is not None:
        query = query.where(Brand.store_id == store_id)
    found = list(db.session.scalars(query.order_by(Brand.name, Brand.id).limit(MAX_BRANDS_SCANNED)))
    # Python's order, not the database collation's: the cursor compares (name, id) here too.
    found.sort(key=lambda b: (b.name, b.id))
    if category:
        wanted = category.strip().lower()
        found = [b for b in found if any(str(c).lower() == wanted for c in (b.categories or []))]
    total = len(found)
    if after is not None:
        found = [b for b in found if (b.name, b.id) > after]
    else:
        found = found[offset:]
    page = found[:limit]
    more = len(found) > limit
    return BrandPage(page, total, (page[-1].name, page[-1].id) if more and page else None)


def stores_by_id(ids: Iterable[int | None]) -> dict[int, Store]:
    wanted = {i for i in ids if i is not None}
    return {s.id: s for s in db.session.scalars(select(Store).where(Store.id.in_(wanted)))} if wanted else {}


# -- new arrivals and discounts --------------------------------------------------------------------

def new_arrivals(*, brand_id: int | None = None, limit: int = 20, offset: int = 0, now: datetime | None = None,
                 count: bool = True) -> tuple[list[NewArrival], int | None]:
    """Visible new arrivals, newest first, and their total (None without `count`)."""
    where = [visible(NewArrival, now)]
    if brand_id is not None:
        where.append(NewArrival.brand_id == brand_id)
    total = (db.session.scalar(select(func.count()).select_from(NewArrival).where(*where)) or 0) if count else None
    newest = func.coalesce(NewArrival.published_at, NewArrival.created_at)
    page = db.session.scalars(select(NewArrival).where(*where).order_by(newest.desc(), NewArrival.id.desc())
                              .limit(limit).offset(offset))
    return list(page), total


def discounts(*, brand_id: int | None = None, on_day: date | None = None, limit: int = 20, offset: int = 0,
              now: datetime | None = None, count: bool = True) -> tuple[list[Discount], int | None]:
    """Visible discounts valid on `on_day` (the store's today by default), ending soonest first,
    and their total (None without `count`)."""
    now = now or utcnow()
    day = on_day or store_day(now)
    where = [visible(Discount, now), Discount.valid_from <= day, Discount.valid_until >= day]
    if brand_id is not None:
        where.append(Discount.brand_id == brand_id)
    total = (db.session.scalar(select(func.count()).select_from(Discount).where(*where)) or 0) if count else None
    page = db.session.scalars(select(Discount).where(*where).order_by(Discount.valid_until, Discount.id)
                              .limit(limit).offset(offset))
    return list(page), total


def brands_by_id(ids: Iterable[int | None]) -> dict[int, Brand]:
    wanted = {i for i in ids if i is not None}
    return {b.id: b for b in db.session.scalars(select(Brand).where(Brand.id.in_(wanted)))} if wanted else {}


# -- stores and their hours ------------------------------------------------------------------------

@dataclass(frozen=True)
class DayHours:
    """A store's hours on one day: closed when opens/closes are None; `note` says why they differ."""

    day: date
    opens: time | None
    closes: time | None
    note: str = ""
    exceptional: bool = False

    @property
    def closed(self) -> bool:
        return self.opens is None or self.closes is None

    def describe(self) -> str:
        """营业时间 text, e.g. "10:00-22:00" or "休息"; with the exception's note."""
        text = "休息" if self.closed else f"{self.opens:%H:%M}-{self.closes:%H:%M}"
        return f"{text}（{self.note}）" if self.note else text


def _clock(value: Any) -> time | None:
    """"10:00" as a time ("24:00": the day's last minute); anything else (a typo) as None."""
    try:
        hours, minutes = (int(part) for part in str(value).split(":"))
        return time(23, 59) if (hours, minutes) == (24, 0) else time(hours, minutes)
    except (ValueError, TypeError):
        return None


def hours_on(store: Store, day: date, exception: StoreHoursException | None = None) -> DayHours:
    """The store's hours on `day`: the exception's if there is one (no times: closed), else its
    weekly hours for that weekday (a weekday missing: closed)."""
    if exception is not None:
        return DayHours(day, exception.opens, exception.closes, exception.note or "", exceptional=True)
    pair = (store.weekly_hours or {}).get(WEEKDAY_KEYS[day.weekday()])
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return DayHours(day, None, None)
    return DayHours(day, _clock(pair[0]), _clock(pair[1]))


def exceptions_on(store_ids: Iterable[int], day: date) -> dict[int, StoreHoursException]:
    wanted = set(store_ids)
    if not wanted:
        return {}
    return {e.store_id: e for e in db.session.scalars(
        select(StoreHoursException).where(StoreHoursException.store_id.in_(wanted), StoreHoursException.day == day))}


def stores_today(now: datetime | None = None) -> list[tuple[Store, DayHours]]:
    """Every active store with its hours today (store day), in the console's order. One query:
    the day's exceptions come joined to their store."""
    day = store_day(now)
    rows = db.session.execute(
        select(Store, StoreHoursException).outerjoin(
            StoreHoursException, and_(StoreHoursException.store_id == Store.id, StoreHoursException.day == day))
        .where(Store.active.is_(True)).order_by(Store.sort_order, Store.id))
    return [(store, hours_on(store, day, exception)) for store, exception in rows]


def store_hours_today(store: Store, now: datetime | None = None) -> DayHours:
    day = store_day(now)
    return hours_on(store, day, exceptions_on([store.id], day).get(store.id))
