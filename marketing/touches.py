"""Recording the O2O funnel's touches: one call from wherever a touch happens (a QR push, a page
view, a payment), in the caller's unit of work.

A touch with a `key` is recorded once whatever the retries: a retried push or replayed payment
notification inserts nothing the second time (ON CONFLICT DO NOTHING on (kind, key)). Each call is
one INSERT: the brand of a counter is looked up inside it (`brand_counter`), never by a SELECT first.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select

from marketing.models import TOUCH_KINDS, Brand, QrCode, Touch
from wx_service.ground.db import insert_for, utcnow
from wx_service.ground.extensions import db


def _row(kind: str, *, key: str | None = None, openid: str = "", member_id: int | None = None,
         campaign: str = "", brand_id: int | None = None, brand_counter: str = "", amount_fen: int = 0,
         counter: str = "", ref: str = "", source: str = "", occurred_at: datetime | None = None) -> dict[str, Any]:
    if kind not in TOUCH_KINDS:
        raise ValueError(f"a touch kind is one of {', '.join(TOUCH_KINDS)}")
    if not openid and member_id is None:
        raise ValueError("a touch names its shopper: an openid or a member")
    brand: Any = brand_id
    if brand is None and brand_counter:
        brand = (select(Brand.id).where(Brand.counter_code == brand_counter).order_by(Brand.id).limit(1)
                 .scalar_subquery())
    named: Any = (campaign or "")[:64]
    if not named and source:
        named = func.coalesce(select(QrCode.scene).where(QrCode.scene == source[:64]).scalar_subquery(), "")
    return dict(kind=kind, key=key, openid=openid or "", member_id=member_id, campaign=named,
                brand_id=brand, amount_fen=amount_fen, counter=(counter or "")[:32], ref=(ref or "")[:96],
                occurred_at=occurred_at or utcnow())


def record(kind: str, *, key: str | None = None, openid: str = "", member_id: int | None = None,
           campaign: str = "", brand_id: int | None = None, brand_counter: str = "", amount_fen: int = 0,
           counter: str = "", ref: str = "", source: str = "", occurred_at: datetime | None = None) -> bool:
    """Append one touch. True when it was new, False when a touch of this kind and key exists.

    `brand_counter`: the brand is the one whose counter_code this is (Brand.counter_code ==
    Order.counter), found inside the INSERT. `counter`: where it happened (a payment's counter).
    `source`: an order's or card's free-text origin; it is the campaign when it is one of our QR
    codes' scenes (found inside the INSERT too), else the touch has no campaign."""
    values = _row(kind, key=key, openid=openid, member_id=member_id, campaign=campaign, brand_id=brand_id,
                  brand_counter=brand_counter, amount_fen=amount_fen, counter=counter, ref=ref, source=source,
                  occurred_at=occurred_at)
    stmt = (insert_for(db.session, Touch).values(**values).on_conflict_do_nothing(index_elements=["kind", "key"])
            .returning(Touch.id))
    # RETURNING, not rowcount: Postgres (psycopg) reports -1 for this INSERT, so a new touch read as old.
    return db.session.execute(stmt).first() is not None


def push_time(at_unix: int) -> datetime:
    return datetime.fromtimestamp(at_unix, timezone.utc)


def record_push(openid: str, at_unix: int, scene: str, *, follow: bool) -> None:
    """A follow and/or a QR scan from a WeChat push, in one INSERT. Keyed by openid+CreateTime, as
    WeChat's own dedup of events is (a retried push records nothing more). The scene is the
    campaign; a scene that is a brand's counter code also names the brand."""
    key = f"{openid}:{at_unix}"
    at = push_time(at_unix)
    rows = []
    if scene:
        rows.append(_row("scan", key=key, openid=openid, campaign=scene, brand_counter=scene, occurred_at=at))
    if follow:
        rows.append(_row("follow", key=key, openid=openid, campaign=scene, brand_counter=scene, occurred_at=at))
    if rows:
        db.session.execute(insert_for(db.session, Touch).values(rows)
                           .on_conflict_do_nothing(index_elements=["kind", "key"]))
