"""Recording the O2O funnel's touches: one call from wherever a touch happens (a QR push, a page
view, a payment), in the caller's unit of work.

A touch with a `key` is recorded once whatever the retries: a retried push or replayed payment
notification inserts nothing the second time (ON CONFLICT DO NOTHING on (kind, key)).
"""
from __future__ import annotations

from datetime import datetime

from marketing.models import TOUCH_KINDS, Touch
from wx_service.ground.db import insert_for, utcnow
from wx_service.ground.extensions import db


def record(kind: str, *, key: str | None = None, openid: str = "", member_id: int | None = None,
           campaign: str = "", brand_id: int | None = None, amount_fen: int = 0,
           occurred_at: datetime | None = None) -> bool:
    """Append one touch. True when it was new, False when a touch of this kind and key exists."""
    if kind not in TOUCH_KINDS:
        raise ValueError(f"a touch kind is one of {', '.join(TOUCH_KINDS)}")
    if not openid and member_id is None:
        raise ValueError("a touch names its shopper: an openid or a member")
    stmt = insert_for(db.session, Touch).values(
        kind=kind, key=key, openid=openid, member_id=member_id, campaign=(campaign or "")[:64], brand_id=brand_id,
        amount_fen=amount_fen, occurred_at=occurred_at or utcnow(),
    ).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(Touch.id)
    # RETURNING, not rowcount: Postgres (psycopg) reports -1 for this INSERT, so a new touch read as old.
    return db.session.execute(stmt).first() is not None
