"""Brand subscriptions (issue 12): a shopper subscribes to a brand's news and unsubscribes, from
the OA (keyword or menu), the mini-program, an H5 page or the console; every real change is one
row of the consent ledger (when, what, which channel, from where). Flushes, never commits.

Idempotent: subscribing twice changes nothing and writes no second ledger row (the state row is
inserted with ON CONFLICT DO NOTHING and flipped by compare-and-swap, so two taps at once write
one change). Each new subscription is also a `brand_subscribe` touch for the O2O funnel.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update

from marketing import touches
from marketing.models import SUBSCRIBE, SUBSCRIPTION_CHANNELS, UNSUBSCRIBE, Brand, BrandSubscription, BrandSubscriptionChange
from wx_service.ground.db import insert_for, utcnow
from wx_service.ground.extensions import db


class UnknownBrand(LookupError):
    """No active brand by that id or name."""


def find_brand(name: str) -> Brand | None:
    """An active brand by its Chinese or English name, case-insensitive ("兰蔻", "lancome")."""
    wanted = (name or "").strip().lower()[:64]
    if not wanted:
        return None
    return db.session.scalar(select(Brand).where(Brand.active.is_(True), or_(
        func.lower(Brand.name) == wanted, func.lower(Brand.name_en) == wanted)).order_by(Brand.id).limit(1))


def get_brand(brand_id: int) -> Brand:
    brand = db.session.get(Brand, brand_id)
    if brand is None or not brand.active:
        raise UnknownBrand(f"no brand {brand_id}")
    return brand


def _check(openid: str, channel: str) -> None:
    if channel not in SUBSCRIPTION_CHANNELS:
        raise ValueError(f"a subscription channel is one of {', '.join(SUBSCRIPTION_CHANNELS)}")
    if not openid:
        raise ValueError("a subscription names its shopper's openid")


def _log(openid: str, brand_id: int, action: str, channel: str, source: str, now: datetime) -> BrandSubscriptionChange:
    change = BrandSubscriptionChange(openid=openid, brand_id=brand_id, action=action, channel=channel,
                                     source=(source or "")[:128], at=now)
    db.session.add(change)
    db.session.flush()
    return change


def subscribe(openid: str, brand_id: int, channel: str, source: str = "", *, now: datetime | None = None) -> bool:
    """Subscribe the shopper to the brand's news. True when this changed anything (a ledger row
    and a funnel touch were written), False when they were subscribed already."""
    _check(openid, channel)
    get_brand(brand_id)
    now = now or utcnow()
    inserted = db.session.execute(insert_for(db.session, BrandSubscription).values(
        openid=openid, brand_id=brand_id, active=True, channel=channel, created_at=now, changed_at=now,
    ).on_conflict_do_nothing(index_elements=["openid", "brand_id"]).returning(BrandSubscription.id)).first() is not None
    if not inserted:
        moved = db.session.execute(update(BrandSubscription).where(
            BrandSubscription.openid == openid, BrandSubscription.brand_id == brand_id,
            BrandSubscription.active.is_(False)).values(active=True, channel=channel, changed_at=now)).rowcount
        if not moved:
            return False
    change = _log(openid, brand_id, SUBSCRIBE, channel, source, now)
    touches.record("brand_subscribe", key=f"sub:{change.id}", openid=openid, brand_id=brand_id,
                   campaign=f"brand_subscribe:{channel}", occurred_at=now)
    return True


def unsubscribe(openid: str, brand_id: int, channel: str, source: str = "", *, now: datetime | None = None) -> bool:
    """Stop the brand's news for the shopper. True when they were subscribed (a ledger row written)."""
    _check(openid, channel)
    now = now or utcnow()
    moved = db.session.execute(update(BrandSubscription).where(
        BrandSubscription.openid == openid, BrandSubscription.brand_id == brand_id,
        BrandSubscription.active.is_(True)).values(active=False, channel=channel, changed_at=now)).rowcount
    if not moved:
        return False
    _log(openid, brand_id, UNSUBSCRIBE, channel, source, now)
    return True


def brands_of(openid: str) -> list[Brand]:
    """The brands the shopper hears of now, by name."""
    return list(db.session.scalars(select(Brand).join(BrandSubscription, BrandSubscription.brand_id == Brand.id).where(
        BrandSubscription.openid == openid, BrandSubscription.active.is_(True), Brand.active.is_(True))
        .order_by(Brand.name)))


def subscribed_ids(openid: str) -> set[int]:
    return set(db.session.scalars(select(BrandSubscription.brand_id).where(
        BrandSubscription.openid == openid, BrandSubscription.active.is_(True))))


def active_brands() -> list[Brand]:
    """Every brand a shopper may subscribe to."""
    return list(db.session.scalars(select(Brand).where(Brand.active.is_(True)).order_by(Brand.name)))


def ledger(openid: str, brand_id: int | None = None) -> list[BrandSubscriptionChange]:
    """The shopper's consent changes, oldest first."""
    query = select(BrandSubscriptionChange).where(BrandSubscriptionChange.openid == openid)
    if brand_id is not None:
        query = query.where(BrandSubscriptionChange.brand_id == brand_id)
    return list(db.session.scalars(query.order_by(BrandSubscriptionChange.id)))


def subscriber_count(brand_ids: list[int]) -> int:
    """Distinct shoppers subscribed now to any of the brands."""
    if not brand_ids:
        return 0
    return db.session.scalar(select(func.count(func.distinct(BrandSubscription.openid))).where(
        BrandSubscription.brand_id.in_(brand_ids), BrandSubscription.active.is_(True))) or 0
