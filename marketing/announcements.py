"""Announcing an item's news to its brands' subscribers (issue 12): a new arrival (its brand) or
an activity (the brands taking part). `announce` records the Announcement, once per (kind, item),
with its first chunk, and queues that chunk's job after commit; marketing/news_jobs.py does the
sending, chunk by chunk. The content publisher calls `announce` when an item is published; the
CLI (`flask --app wsgi marketing announce`) does it by hand. Flushes, never commits.

Also here: what a message says (`content`), the quiet hours, and the progress the console shows.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from marketing import subscriptions
from marketing.models import (
    ANNOUNCEMENT_KINDS,
    Activity,
    ActivityBrand,
    Announcement,
    AnnouncementChunk,
    Brand,
    BrandNewsDelivery,
    NewArrival,
)
from wx_service.ground.db import insert_for, utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, settings

STORE_ZONE = ZoneInfo("Asia/Shanghai")
CHUNK_JOB = "marketing.news_jobs.send_chunk"
# Delivery outcomes, as counted on the announcement.
SENT, FAILED, SENDING, UNKNOWN = "sent", "failed", "sending", "unknown"
UNFOLLOWED, UNSUBSCRIBED, CAPPED, NO_CHANNEL = ("skipped:unfollowed", "skipped:unsubscribed", "skipped:capped",
                                                "skipped:no_channel")
OUTCOMES = (SENT, UNFOLLOWED, UNSUBSCRIBED, CAPPED, NO_CHANNEL, FAILED, UNKNOWN, SENDING)
KIND_TITLES = {"new_arrival": "新品上市", "activity": "品牌活动"}


class UnknownItem(LookupError):
    """No new arrival / activity by that id."""


def _item(kind: str, item_id: int) -> tuple[list[int], str]:
    """The brands an item concerns and its title."""
    if kind == "new_arrival":
        arrival = db.session.get(NewArrival, item_id)
        if arrival is None:
            raise UnknownItem(f"no new arrival {item_id}")
        return [arrival.brand_id], arrival.product
    if kind == "activity":
        activity = db.session.get(Activity, item_id)
        if activity is None:
            raise UnknownItem(f"no activity {item_id}")
        brands = sorted(db.session.scalars(select(ActivityBrand.brand_id).where(ActivityBrand.activity_id == item_id)))
        return brands, activity.title
    raise ValueError(f"an announcement is about one of {', '.join(ANNOUNCEMENT_KINDS)}")


def announce(kind: str, item_id: int, now: datetime | None = None) -> Announcement | None:
    """Tell the item's brands' subscribers about it. None when it was announced already (a second
    publish, a retried request): announcing is once per item."""
    brand_ids, title = _item(kind, item_id)
    now = now or utcnow()
    created = db.session.execute(insert_for(db.session, Announcement).values(
        kind=kind, item_id=item_id, title=title[:64], brand_ids=brand_ids, counts={}, created_at=now,
        subscribers=0, chunks_total=0, chunks_done=0,
    ).on_conflict_do_nothing(index_elements=["kind", "item_id"]).returning(Announcement.id)).scalar()
    if created is None:
        return None
    announcement = db.session.get(Announcement, created)
    announcement.subscribers = subscriptions.subscriber_count(brand_ids)
    announcement.chunks_total = max(1, math.ceil(announcement.subscribers / settings().BRAND_NEWS_CHUNK_SIZE))
    chunk = AnnouncementChunk(announcement_id=announcement.id, seq=0, after_key="", status="queued", queued_at=now)
    db.session.add(chunk)
    db.session.flush()
    enqueue_after_commit(CHUNK_JOB, chunk_id=chunk.id)
    return announcement


def content(announcement: Announcement) -> dict[str, Any]:
    """What the message says, brand aside: what, when (store time "YYYY-MM-DD HH:MM", as a
    subscribe `time` value must be), the note, and the mini-program page it opens."""
    if announcement.kind == "new_arrival":
        arrival = db.session.get(NewArrival, announcement.item_id)
        when = arrival.published_at or announcement.created_at
        return {"what": arrival.product, "when": _store_time(when), "note": f"¥{arrival.price_fen / 100:.2f} 到店试用",
                "page": f"pages/brands/arrival?id={arrival.id}"}
    activity = db.session.get(Activity, announcement.item_id)
    return {"what": activity.title, "when": _store_time(activity.starts_at), "note": activity.place or "欢迎到店参加",
            "page": f"pages/activities/detail?id={activity.id}"}


def brand_names(brand_ids: list[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Brand.id, Brand.name).where(Brand.id.in_(brand_ids))).all()) if brand_ids else {}


def _store_time(at: datetime) -> str:
    return at.astimezone(STORE_ZONE).strftime("%Y-%m-%d %H:%M")


# -- quiet hours -----------------------------------------------------------------------------------

def quiet_until(now: datetime, spec: str | None = None) -> datetime | None:
    """When the quiet hours `spec` ("21:00-09:00", store time) around `now` end (UTC), or None
    when `now` is outside them (or there are none: "" / "off")."""
    spec = settings().BRAND_NEWS_QUIET_HOURS if spec is None else spec
    if not spec or spec == "off":
        return None
    start_s, _, end_s = spec.partition("-")
    start = datetime.strptime(start_s, "%H:%M").time()
    end = datetime.strptime(end_s, "%H:%M").time()
    local = now.astimezone(STORE_ZONE)
    at = local.time()
    today_end = datetime.combine(local.date(), end, STORE_ZONE)
    if start <= end:
        quiet, until = start <= at < end, today_end
    elif at >= start:
        quiet, until = True, today_end + timedelta(days=1)
    else:
        quiet, until = at < end, today_end
    return until.astimezone(now.tzinfo) if quiet else None


# -- progress --------------------------------------------------------------------------------------

def refresh_progress(announcement_id: int, now: datetime | None = None) -> Announcement:
    """Recount the announcement's deliveries by outcome and its chunks done (one grouped query
    each); finished once its last chunk is cut and every chunk is done."""
    announcement = db.session.get(Announcement, announcement_id, populate_existing=True)
    announcement.counts = dict(db.session.execute(select(BrandNewsDelivery.status, func.count()).where(
        BrandNewsDelivery.announcement_id == announcement_id).group_by(BrandNewsDelivery.status)).all())
    chunks = db.session.execute(select(AnnouncementChunk.status, AnnouncementChunk.final, func.count()).where(
        AnnouncementChunk.announcement_id == announcement_id).group_by(AnnouncementChunk.status,
                                                                       AnnouncementChunk.final)).all()
    done = sum(n for status, _final, n in chunks if status == "done")
    total = sum(n for _status, _final, n in chunks)
    cut = any(final for _status, final, _n in chunks)
    announcement.chunks_done = done
    if cut:
        announcement.chunks_total = total
    else:
        announcement.chunks_total = max(announcement.chunks_total, total)
    if cut and done == total and announcement.finished_at is None:
        announcement.finished_at = now or utcnow()
    db.session.flush()
    return announcement


def recent(limit: int = 50) -> list[Announcement]:
    return list(db.session.scalars(select(Announcement).order_by(Announcement.id.desc()).limit(limit)))


def progress_json(announcement: Announcement) -> dict[str, Any]:
    """The console's view of one announcement."""
    counts = {k: int(announcement.counts.get(k, 0)) for k in OUTCOMES}
    state = "done" if announcement.finished_at else ("running" if announcement.started_at else "queued")
    return {"id": announcement.id, "kind": announcement.kind, "kind_title": KIND_TITLES.get(announcement.kind, ""),
            "item_id": announcement.item_id, "title": announcement.title, "subscribers": announcement.subscribers,
            "chunks_done": announcement.chunks_done, "chunks_total": announcement.chunks_total, "counts": counts,
            "state": state, "created_at": _store_time(announcement.created_at),
            "started_at": _store_time(announcement.started_at) if announcement.started_at else "",
            "finished_at": _store_time(announcement.finished_at) if announcement.finished_at else ""}
