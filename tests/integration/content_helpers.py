"""Building blocks for the content tests: stores with hours, brands, and published (or not)
activities, new arrivals and discounts, each made in its own committed unit of work; pictures, and
the audit entries of a subject."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import select

from marketing.models import (
    DRAFT,
    PUBLISHED,
    Activity,
    ActivityBrand,
    Brand,
    ContentImage,
    Discount,
    NewArrival,
    Store,
    StoreHoursException,
)
from members.models import AuditEntry
from tests.integration.members_helpers import uow
from wx_service.edges.demo_content import solid_png
from wx_service.ground.db import utcnow

SHANGHAI_OFFSET = timezone(timedelta(hours=8))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"


def png(rgb: tuple[int, int, int] = (200, 30, 60), size: int = 8) -> bytes:
    return solid_png(size, size, rgb)


def entries(session, prefix: str = "content.") -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action.like(prefix + "%")).order_by(AuditEntry.id)))


def at(days: float = 0, hours: float = 0) -> datetime:
    """An instant relative to now, in store time (as the console sends it)."""
    return (datetime.now(timezone.utc) + timedelta(days=days, hours=hours)).astimezone(SHANGHAI_OFFSET)


EVERY_DAY = {day: ["10:00", "22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def store(app, code: str = "FT", name: str = "南山百货 福田店", *, lat: float | None = 22.5333,
          lng: float | None = 114.0550, hours: dict | None = None, active: bool = True, **extra: Any) -> int:
    with uow(app) as session:
        row = Store(code=code, name=name, latitude=lat, longitude=lng,
                    weekly_hours=EVERY_DAY if hours is None else hours, active=active, **extra)
        session.add(row)
        session.flush()
        return row.id


def exception(app, store_id: int, day: date, opens: time | None = None, closes: time | None = None,
              note: str = "") -> None:
    with uow(app) as session:
        session.add(StoreHoursException(store_id=store_id, day=day, opens=opens, closes=closes, note=note))


def image(app, name: str = "logo.png") -> int:
    with uow(app) as session:
        data = b"\x89PNG\r\n\x1a\n" + name.encode()
        row = ContentImage(sha256=name.encode().hex().ljust(64, "0")[:64], filename=name, content_type="image/png",
                           size=len(data), data=data)
        session.add(row)
        session.flush()
        return row.id


def brand(app, name: str = "兰蔻", name_en: str = "Lancome", *, store_id: int | None = None, floor: str = "1F",
          counter: str = "LANCOME", categories: list[str] | None = None, active: bool = True, **extra: Any) -> int:
    with uow(app) as session:
        row = Brand(name=name, name_en=name_en, store_id=store_id, floor=floor, counter_code=counter,
                    categories=categories if categories is not None else ["美妆"], active=active, **extra)
        session.add(row)
        session.flush()
        return row.id


def _publication(status: str, publish_at: datetime | None, unpublish_at: datetime | None) -> dict[str, Any]:
    return {"status": status, "publish_at": publish_at, "unpublish_at": unpublish_at,
            "published_at": (publish_at or utcnow() - timedelta(hours=1)) if status == PUBLISHED else None}


def activity(app, title: str = "周末美妆节", *, starts_at: datetime | None = None, ends_at: datetime | None = None,
             brands: tuple[int, ...] = (), store_id: int | None = None, status: str = PUBLISHED,
             publish_at: datetime | None = None, unpublish_at: datetime | None = None, **extra: Any) -> int:
    starts_at = starts_at or utcnow() - timedelta(hours=1)
    with uow(app) as session:
        row = Activity(title=title, starts_at=starts_at, ends_at=ends_at or starts_at + timedelta(hours=3),
                       store_id=store_id, **_publication(status, publish_at, unpublish_at), **extra)
        session.add(row)
        session.flush()
        for brand_id in brands:
            session.add(ActivityBrand(activity_id=row.id, brand_id=brand_id))
        return row.id


def arrival(app, brand_id: int, product: str = "小黑瓶精华 50ml", price_fen: int = 108_000, *,
            status: str = PUBLISHED, publish_at: datetime | None = None, unpublish_at: datetime | None = None,
            **extra: Any) -> int:
    with uow(app) as session:
        row = NewArrival(brand_id=brand_id, product=product, price_fen=price_fen,
                         **_publication(status, publish_at, unpublish_at), **extra)
        session.add(row)
        session.flush()
        return row.id


def discount(app, title: str = "满 1000 减 100", *, brand_id: int | None = None, valid_from: date | None = None,
             valid_until: date | None = None, status: str = PUBLISHED, publish_at: datetime | None = None,
             unpublish_at: datetime | None = None, **extra: Any) -> int:
    from marketing.listings import store_day

    today = store_day()
    with uow(app) as session:
        row = Discount(title=title, brand_id=brand_id, valid_from=valid_from or today - timedelta(days=1),
                       valid_until=valid_until or today + timedelta(days=7),
                       **_publication(status, publish_at, unpublish_at), **extra)
        session.add(row)
        session.flush()
        return row.id


__all__ = ["DRAFT", "PUBLISHED", "store", "exception", "image", "brand", "activity", "arrival", "discount"]
