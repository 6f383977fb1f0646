"""Read-only lists for the shopper's side (mini-program API and OA H5 pages): the services on
offer, the goods that can be held, and what one shopper has (waiting-list places, live holds),
plus the names those need, fetched by id in one query each (no query per row).
Reads only: never flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from reservations.models import GoodsHold, HoldableVariant, Resource, Service, WaitlistEntry
from reservations.states import HOLDING, OFFERED, WAITING
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

MAX_GOODS = 200


def active_services() -> list[Service]:
    """Every service a shopper can book, by counter then name."""
    return list(db.session.scalars(select(Service).where(Service.active.is_(True))
                                   .order_by(Service.counter_code, Service.name, Service.id)))


def holdable_goods(counter: str | None = None, brand: str | None = None) -> list[HoldableVariant]:
    """Goods a counter lets shoppers hold (filtered by counter code and/or brand), sold-out ones
    included so the shopper sees why a size cannot be held."""
    query = select(HoldableVariant)
    if counter:
        query = query.where(HoldableVariant.counter_code == counter)
    if brand:
        query = query.where(HoldableVariant.brand == brand)
    return list(db.session.scalars(query.order_by(HoldableVariant.counter_code, HoldableVariant.brand,
                                                  HoldableVariant.product, HoldableVariant.variant,
                                                  HoldableVariant.id).limit(MAX_GOODS)))


def waitlist_of(openid: str, now: datetime | None = None) -> list[WaitlistEntry]:
    """The shopper's places still waiting (or offered) for slots still to come, soonest first."""
    now = now or utcnow()
    return list(db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.openid == openid, WaitlistEntry.status.in_((WAITING, OFFERED)), WaitlistEntry.starts_at > now)
        .order_by(WaitlistEntry.starts_at, WaitlistEntry.id)))


def holds_of(openid: str) -> list[GoodsHold]:
    """The shopper's holds that still keep a unit (held or confirmed), soonest visit first."""
    return list(db.session.scalars(select(GoodsHold).where(GoodsHold.openid == openid,
                                                           GoodsHold.status.in_(HOLDING))
                                   .order_by(GoodsHold.visit_day, GoodsHold.id)))


def services_by_id(ids: Iterable[int]) -> dict[int, Service]:
    wanted = set(ids)
    return {s.id: s for s in db.session.scalars(select(Service).where(Service.id.in_(wanted)))} if wanted else {}


def resources_by_id(ids: Iterable[int]) -> dict[int, Resource]:
    wanted = set(ids)
    return {r.id: r for r in db.session.scalars(select(Resource).where(Resource.id.in_(wanted)))} if wanted else {}


def variants_by_id(ids: Iterable[int]) -> dict[int, HoldableVariant]:
    wanted = set(ids)
    return ({v.id: v for v in db.session.scalars(select(HoldableVariant).where(HoldableVariant.id.in_(wanted)))}
            if wanted else {})
