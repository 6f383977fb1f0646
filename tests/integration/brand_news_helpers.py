"""Building blocks for the brand-subscription and brand-news tests: brands, items to announce,
emulated shoppers who follow the OA, and what reached a shopper's chat."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from marketing import announcements, subscriptions
from marketing.models import Activity, ActivityBrand, Announcement, Brand, BrandNewsDelivery, NewArrival
from members.models import Follower
from tests.integration.reservation_helpers import uow
from wx_service.ground.db import utcnow


def brand(app, name: str = "兰蔻", name_en: str = "Lancome", counter: str = "LANCOME") -> int:
    with uow(app) as session:
        found = session.scalar(select(Brand).where(Brand.name == name))
        if found is None:
            found = Brand(name=name, name_en=name_en, counter_code=counter)
            session.add(found)
            session.flush()
        return found.id


def arrival(app, brand_id: int, product: str = "菁纯臻颜精华", price_fen: int = 1280_00) -> int:
    with uow(app) as session:
        item = NewArrival(brand_id=brand_id, product=product, price_fen=price_fen, status="published",
                          published_at=utcnow())
        session.add(item)
        session.flush()
        return item.id


def activity(app, brand_ids: list[int], title: str = "春季美妆节") -> int:
    with uow(app) as session:
        start = utcnow() + timedelta(days=3)
        item = Activity(title=title, place="一楼中庭", starts_at=start, ends_at=start + timedelta(hours=6),
                        status="published", published_at=utcnow())
        session.add(item)
        session.flush()
        for brand_id in brand_ids:
            session.add(ActivityBrand(activity_id=item.id, brand_id=brand_id))
        return item.id


def follower(app, emulator, n: int = 0, *, follows: bool = True) -> str:
    """The n-th emulated shopper as an OA follower (the emulator agrees); their OA openid."""
    emu = list(emulator.shoppers.values())[n]
    emu.subscribed = follows
    with uow(app) as session:
        if session.scalar(select(Follower).where(Follower.openid == emu.openid)) is None:
            session.add(Follower(openid=emu.openid, unionid=emu.unionid, subscribed=follows))
        else:
            session.execute(Follower.__table__.update().where(Follower.openid == emu.openid).values(subscribed=follows))
    return emu.openid


def subscribe(app, openid: str, brand_id: int, channel: str = "h5", at: datetime | None = None) -> bool:
    with uow(app):
        return subscriptions.subscribe(openid, brand_id, channel, now=at)


def announce(app, kind: str, item_id: int, run_jobs=None, now: datetime | None = None) -> int | None:
    with uow(app):
        made = announcements.announce(kind, item_id, now=now)
        made_id = made.id if made else None
    if run_jobs is not None:
        run_jobs()
    return made_id


def brand_news(emulator, openid: str) -> list[dict[str, Any]]:
    """The brand-news messages the shopper sees (template or subscribe messages)."""
    shopper = emulator.mp_shopper(openid)
    return [line for line in shopper.chat if line["via"] in ("template", "subscribe")
            and "brand_news" in line.get("template_id", "")]


def progress(app, announcement_id: int) -> dict[str, Any]:
    with uow(app):
        return announcements.progress_json(announcements.refresh_progress(announcement_id))


def deliveries(app) -> dict[str, str]:
    with uow(app) as session:
        return dict(session.execute(select(BrandNewsDelivery.openid, BrandNewsDelivery.status)).all())


def announcement(app, announcement_id: int) -> Announcement:
    with uow(app) as session:
        found = session.get(Announcement, announcement_id)
        session.expunge_all()
        return found
