"""Scheduled member jobs (benefits, expiry, levels, card catch-up) and the greeting they send.

Each runs through wx_service.ground.queue.run_job in one transaction and is safe to run twice: coupons
and expiries are keyed by member and year, levels and card syncs converge on the same state.
"""
from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import func, select

from members import benefits, points, standing
from members.ledger import SHANGHAI
from members.models import Coupon, Member, MemberCard, PointsEntry
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, wechat_client

log = logging.getLogger(__name__)


def _day(value: str | date | None) -> date:
    if value is None:
        return benefits.store_today()
    return value if isinstance(value, date) else date.fromisoformat(value)


def grant_birthday_and_anniversary(today: str | None = None) -> int:
    """Daily at 09:00 store time: birthday and anniversary coupons. Returns how many were new."""
    return sum(g.new for g in benefits.grant_birthday_and_anniversary(_day(today)))


def send_benefit_greeting(coupon_id: int) -> None:
    """The OA template message for a newly issued benefit coupon (client_msg_id dedups resends)."""
    coupon = db.session.get(Coupon, coupon_id)
    message = benefits.greeting_message(coupon) if coupon else None
    if message is None:
        return
    wechat_client().post("message/template/send", data=message)


def expire_points_for_year(year: int | None = None) -> int:
    """On 1 January: points earned in the year before last expire. Returns members touched."""
    year = year if year is not None else utcnow().astimezone(SHANGHAI).year - 2
    member_ids = db.session.scalars(select(PointsEntry.member_id).join(Member, Member.id == PointsEntry.member_id)
                                    .where(PointsEntry.earned_year <= year, Member.status == "active")
                                    .distinct().order_by(PointsEntry.member_id)).all()
    expired = [points.expire_points(member_id, year) for member_id in member_ids]
    log.info("expiry of %d points: %d members", year, sum(e is not None for e in expired))
    return sum(e is not None for e in expired)


def recompute_levels() -> int:
    """Daily: levels follow 12 months of spend, so they also fall as old spend ages out."""
    ids = db.session.scalars(select(Member.id).where(Member.status == "active").order_by(Member.id)).all()
    return sum(standing.recompute_level(member_id) is not None for member_id in ids)


def resync_cards() -> int:
    """Daily: cards behind the ledger (a sync that failed for good, e.g. on the daily quota) get
    another members.jobs.sync_card."""
    latest = (select(PointsEntry.member_id, func.max(PointsEntry.id).label("latest"))
              .group_by(PointsEntry.member_id).subquery())
    behind = db.session.scalars(select(MemberCard.member_id).join(latest, latest.c.member_id == MemberCard.member_id)
                                .where(MemberCard.status == "active", MemberCard.synced_ledger_id < latest.c.latest)
                                .distinct()).all()
    for member_id in behind:
        enqueue_after_commit("members.jobs.sync_card", member_id=member_id)
    return len(behind)
