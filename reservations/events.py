"""What the counters' live console pages hear: one Redis pub/sub channel per account (and Redis
database), published after commit.

A change to a booking, a hold or a waiting-list place notes its counter; when the transaction
commits, one event per counter is published (a reschedule, or a sweep that marks fifty no-shows,
is one event per counter, not one per row). Events carry the counter and what kind of thing
changed, never content: a page that hears one re-reads its board from the database, so it can
never show something that was rolled back, and a lost event costs only freshness (the page
re-reads when its stream reconnects). Nothing is published for a transaction that rolls back.
"""
from __future__ import annotations

import json
import time

from reservations.models import (
    Booking,
    GoodsHold,
    HoldableVariant,
    Service,
    WaitlistEntry,
)
from wx_service.ground import redis_keys
from wx_service.ground.extensions import db, redis, services

_PENDING = "reservation_events"  # session.info: (the transaction, {counter: {what}})


def channel() -> str:
    """The channel's name, with the Redis database number in it (see redis_keys)."""
    pool = getattr(redis(), "connection_pool", None)
    db_number = int((getattr(pool, "connection_kwargs", None) or {}).get("db") or 0)
    return redis_keys.reservation_events(services().settings.WECHAT_APPID, db_number)


def _publish(batch: dict[str, set[str]]) -> None:
    if not batch:
        return
    now = time.time()
    pipe = redis().pipeline(transaction=False)
    for counter, what in sorted(batch.items()):
        pipe.publish(channel(), json.dumps({"kind": "reservations", "counter": counter, "what": sorted(what),
                                            "at": now}, separators=(",", ":")))
    pipe.execute()
    batch.clear()


def counter_changed(counter_code: str, what: str) -> None:
    """Note that something (`booking`, `hold`, `waitlist`, `variant`) at this counter changed: its
    pages are told once the current transaction commits."""
    session = db.session()
    transaction = session.get_transaction()
    pending = session.info.get(_PENDING)
    if pending is None or transaction is None or pending[0] is not transaction:
        batch: dict[str, set[str]] = {}
        session.info[_PENDING] = (transaction, batch)

        def publish() -> None:
            _publish(batch)

        publish.label = "reservation events"  # type: ignore[attr-defined]  # named in the log if it fails
        db.after_commit(publish)
    else:
        batch = pending[1]
    batch.setdefault(counter_code, set()).add(what)


def booking_changed(booking: Booking) -> None:
    counter_changed(db.session.get(Service, booking.service_id).counter_code, "booking")


def hold_changed(hold: GoodsHold) -> None:
    counter_changed(db.session.get(HoldableVariant, hold.variant_id).counter_code, "hold")


def waitlist_changed(entry: WaitlistEntry) -> None:
    counter_changed(db.session.get(Service, entry.service_id).counter_code, "waitlist")
