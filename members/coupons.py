"""Coupons handed out by benefits: issued once per source key, redeemed once by code, expiring."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from members import audit
from members.exceptions import CouponNotRedeemable
from members.models import Coupon
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

CODE_DIGITS = 12


def _new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def find_by_source(source_key: str) -> Coupon | None:
    return db.session.scalar(select(Coupon).where(Coupon.source_key == source_key))


def issue(member_id: int, kind: str, title: str, value_fen: int, valid_days: int, source_key: str,
          now: datetime | None = None) -> tuple[Coupon, bool]:
    """The coupon for `source_key`, and whether it was issued just now (False: it existed)."""
    existing = find_by_source(source_key)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    coupon = Coupon(member_id=member_id, kind=kind, title=title, value_fen=value_fen, code=_new_code(),
                    source_key=source_key, issued_at=now, expires_at=now + timedelta(days=valid_days))
    try:
        with db.session.begin_nested():
            db.session.add(coupon)
            db.session.flush()
    except IntegrityError:
        existing = find_by_source(source_key)
        if existing is None:
            raise  # a code collision (1 in 10^12): let the job retry with a new code
        return existing, False
    return coupon, True


def redeem(code: str, staff_id: int | None, now: datetime | None = None) -> Coupon:
    """Redeem at the counter: one UPDATE that succeeds only for a live, unredeemed coupon, so two
    cashiers scanning the same code at once cannot both redeem it."""
    now = now or utcnow()
    result = db.session.execute(
        update(Coupon).where(Coupon.code == code, Coupon.redeemed_at.is_(None), Coupon.expires_at > now)
        .values(redeemed_at=now, redeemed_by_id=staff_id).execution_options(synchronize_session=False))
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == code).execution_options(populate_existing=True))
    if result.rowcount != 1 or coupon is None:
        if coupon is None:
            raise CouponNotRedeemable("no coupon with this code")
        if coupon.redeemed_at is not None and coupon.redeemed_at != now:
            raise CouponNotRedeemable("this coupon was already redeemed")
        raise CouponNotRedeemable("this coupon has expired")
    audit.record(staff_id, "coupon.redeem", f"coupon:{coupon.id}", before={"redeemed": False},
                 after={"redeemed": True, "member": coupon.member_id, "value_fen": coupon.value_fen},
                 detail="" if staff_id is not None else audit.CLI)
    return coupon


def for_member(member_id: int, include_used: bool = False, now: datetime | None = None) -> list[Coupon]:
    query = select(Coupon).where(Coupon.member_id == member_id)
    if not include_used:
        query = query.where(Coupon.redeemed_at.is_(None), Coupon.expires_at > (now or utcnow()))
    return list(db.session.scalars(query.order_by(Coupon.expires_at)))
