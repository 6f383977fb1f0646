"""Content and campaign verbs. Services flush; the edge commits."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from marketing import touches
from marketing.models import Article, QrCode, StoreInfo
from members import coupons
from members.models import Coupon
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit

# WeChat's limits for parametric QR codes (reference §6).
MAX_TEMPORARY_SECONDS = 2_592_000
MAX_SCENE_LENGTH = 64


class InvalidScene(ValueError):
    pass


def latest_articles(kind: str, limit: int) -> list[Article]:
    return list(db.session.scalars(
        select(Article).where(Article.kind == kind, Article.active.is_(True))
        .order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
    ))


def store_info() -> StoreInfo | None:
    return db.session.scalar(select(StoreInfo).order_by(StoreInfo.id).limit(1))


def qr_code_for_scene(scene: str) -> QrCode | None:
    return db.session.scalar(select(QrCode).where(QrCode.scene == scene))


def follow_up_scan(openid: str, scene: str) -> QrCode | None:
    """After a shopper scans a counter's code, send that counter's message through the
    customer-service API (a job), since a passive reply has room for only the welcome."""
    code = qr_code_for_scene(scene)
    if code is not None and code.follow_up_text:
        enqueue_after_commit("wx_service.ground.jobs.send_text", openid=openid, text=code.follow_up_text)
    return code


def validate_scene(scene: str, permanent: bool, expire_seconds: int | None) -> None:
    if not 1 <= len(scene) <= MAX_SCENE_LENGTH:
        raise InvalidScene("a scene string is 1 to 64 characters")
    if not permanent and expire_seconds is not None and not 1 <= expire_seconds <= MAX_TEMPORARY_SECONDS:
        raise InvalidScene("a temporary code lasts 1 to 2592000 seconds (30 days)")


def save_qr_code(scene: str, name: str, permanent: bool, ticket: str, url: str,
                 expire_seconds: int | None, follow_up_text: str = "",
                 now: datetime | None = None) -> QrCode:
    """Record a code WeChat created (or update the one with this scene)."""
    now = now or utcnow()
    code = qr_code_for_scene(scene) or QrCode(scene=scene)
    code.name = name
    code.permanent = permanent
    code.ticket = ticket
    code.url = url
    code.expires_at = None if permanent else now + timedelta(seconds=expire_seconds or 60)
    code.follow_up_text = follow_up_text
    db.session.add(code)
    db.session.flush()
    return code


def redeem_coupon(code: str, staff_id: int | None, now: datetime | None = None) -> Coupon:
    """Redeem a member's coupon at the counter (members.coupons.redeem: audited, once) and record
    it as a funnel touch. Callers redeem through here: members, below marketing, cannot record it."""
    coupon = coupons.redeem(code, staff_id, now=now)
    touches.record("coupon_redeem", key=f"coupon:{coupon.id}", member_id=coupon.member_id,
                   occurred_at=coupon.redeemed_at)
    return coupon
