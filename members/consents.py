"""One-time subscribe-message consents (reference §7.7): each "accept" the mini-program reports is
a row, and each message sent on it spends exactly one. Flushes, never commits."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update

from members.models import SubscribeGrant
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

MAX_GRANTS_PER_REPORT = 20  # the popup shows at most 3 templates; a report of more is not the popup's


def record_grants(openid: str, template_ids: Iterable[str], source: str = "mp", *,
                  now: datetime | None = None) -> int:
    """Record one grant per accepted template; returns how many were recorded."""
    now = now or utcnow()
    accepted = [t for t in template_ids if t][:MAX_GRANTS_PER_REPORT]
    for template_id in accepted:
        db.session.add(SubscribeGrant(openid=openid, template_id=template_id, source=source[:32], granted_at=now))
    db.session.flush()
    return len(accepted)


def remaining(openid: str, template_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(SubscribeGrant).where(
        SubscribeGrant.openid == openid, SubscribeGrant.template_id == template_id,
        SubscribeGrant.spent_at.is_(None))) or 0


def spend(openid: str, template_id: str, spent_for: str, *, now: datetime | None = None) -> bool:
    """Spend the oldest unspent grant on `spent_for`. False when none remains. Guarded: a grant
    another sender spent between the read and the write is not spent twice (we take the next)."""
    now = now or utcnow()
    for _ in range(5):
        grant_id = db.session.scalar(select(SubscribeGrant.id).where(
            SubscribeGrant.openid == openid, SubscribeGrant.template_id == template_id,
            SubscribeGrant.spent_at.is_(None)).order_by(SubscribeGrant.id).limit(1))
        if grant_id is None:
            return False
        took = db.session.execute(update(SubscribeGrant).where(
            SubscribeGrant.id == grant_id, SubscribeGrant.spent_at.is_(None))
            .values(spent_at=now, spent_for=spent_for[:64])).rowcount
        if took:
            return True
    return False


def give_back(spent_for: str) -> int:
    """WeChat refused the send (the grant was not used): the grant is unspent again."""
    return db.session.execute(update(SubscribeGrant).where(SubscribeGrant.spent_for == spent_for[:64],
                                                           SubscribeGrant.spent_at.is_not(None))
                              .values(spent_at=None, spent_for="")).rowcount


def exhaust(openid: str, template_id: str, spent_for: str, *, now: datetime | None = None) -> int:
    """WeChat says this shopper has no consent left for the template (43101): whatever our ledger
    still counts was never WeChat's, so none of it is offered again. Returns how many."""
    return db.session.execute(update(SubscribeGrant).where(
        SubscribeGrant.openid == openid, SubscribeGrant.template_id == template_id,
        SubscribeGrant.spent_at.is_(None)).values(spent_at=now or utcnow(), spent_for=spent_for[:64])).rowcount


def with_remaining(openids: Iterable[str], template_id: str) -> set[str]:
    """Which of `openids` have at least one unspent grant for the template: one grouped query."""
    wanted = list(dict.fromkeys(openids))
    if not wanted or not template_id:
        return set()
    return set(db.session.scalars(select(SubscribeGrant.openid).where(
        SubscribeGrant.openid.in_(wanted), SubscribeGrant.template_id == template_id,
        SubscribeGrant.spent_at.is_(None)).group_by(SubscribeGrant.openid)))
