"""Background work of brand news: sending an announcement to its subscribers chunk by chunk, and
the sweep that resumes a chunk whose worker died.

A chunk is its own unit of work: the subscribers (distinct openids, in keyset order) after the
previous chunk's last openid, BRAND_NEWS_CHUNK_SIZE of them. No transaction and no worker is held
for a whole run: a chunk cuts its range, queues the next chunk at once (so several workers share
a large run), and then works through its own shoppers:

  1. claim the chunk (`queued|waiting -> running`, a compare-and-swap that also counts the attempt,
     which fences a late run) and cut its range (fixed on the first claim: a rerun covers the same
     shoppers); commit, so the next chunk's job is queued;
  2. decide every shopper's outcome with one grouped query per question (already delivered? still
     subscribed? how many brand news in the last 7 days? a consent left? which OA openid, and does
     it still follow?); insert one delivery row per shopper, unique per (openid, kind, item): the
     skipped with their reason, the rest `sending` with their channel (a subscribe message spends
     its consent here); commit;
  3. call WeChat per shopper with no transaction open, recording the verdicts in batches
     (compare-and-swap from `sending`), renewing the chunk's lease with each batch;
  4. mark the chunk done and refresh the announcement's progress.

A worker killed during 3 leaves deliveries `sending`: the sweep (`resume_stalled`, every minute)
queues the chunk again once its lease has lapsed, and the rerun sends the OA templates again with
the same `client_msg_id` (WeChat drops the duplicate, §7.6) and marks a subscribe message
`unknown` (it has no such key: never sent twice), as reservations/jobs.py does for notices.

Outcomes: sent; skipped:unsubscribed (unsubscribed since the announcement), skipped:capped
(BRAND_NEWS_WEEKLY_CAP brand news in the last 7 days, across brands), skipped:unfollowed (the OA
follower left), skipped:no_channel (no consent and no OA openid); failed (WeChat refused it).
A chunk due in the quiet hours waits for their end (`enqueue_after_commit(delay=...)`).
Deciding who is over the weekly cap is serialized across workers (a Postgres advisory lock held
until step 2 commits), so two announcements going out at once cannot both pass a shopper at the
cap; the sends themselves stay parallel.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update

from marketing import announcements as news
from marketing.models import Announcement, AnnouncementChunk, BrandNewsDelivery, BrandSubscription
from members import consents, reach
from wx_service.ground.db import insert_for, lock_for_transaction, utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, services, wechat_client
from wx_service.ground.mp_client import mp_wechat_client
from wx_service.ground.wechat_client import WeChatApiError

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a running chunk not heard of for this long has lost its worker
VERDICT_BATCH = 50
MAX_ATTEMPTS = 8
TRANSIENT_RETRY_SECONDS = 30
# The advisory lock key under which chunks decide who is over the weekly cap (any constant no
# other lock uses: "brandcap" in ASCII).
CAP_LOCK = 0x6272616E64636170
USER_REFUSED, REQUIRE_SUBSCRIBE = 43101, 43004
THING_MAX = 20
QUEUED, WAITING, RUNNING, DONE = "queued", "waiting", "running", "done"


def _when(now: datetime | str | None) -> datetime:
    if now is None:
        return utcnow()
    return datetime.fromisoformat(now) if isinstance(now, str) else now


def send_chunk(chunk_id: int, now: datetime | str | None = None) -> str:
    """Job: send one chunk of an announcement (see the module doc). Returns what became of it."""
    now = _when(now)
    chunk = db.session.get(AnnouncementChunk, chunk_id)
    if chunk is None or chunk.status in (DONE, RUNNING):
        return chunk.status if chunk else "gone"
    until = news.quiet_until(now)
    if until is not None:
        moved = db.session.execute(update(AnnouncementChunk).where(
            AnnouncementChunk.id == chunk_id, AnnouncementChunk.status.in_((QUEUED, WAITING))).values(
            status=WAITING, resume_at=until)).rowcount
        if moved:
            enqueue_after_commit(news.CHUNK_JOB, chunk_id=chunk_id, delay=(until - now).total_seconds())
        return WAITING
    attempt = chunk.attempts + 1
    claimed = db.session.execute(update(AnnouncementChunk).where(
        AnnouncementChunk.id == chunk_id, AnnouncementChunk.status.in_((QUEUED, WAITING)),
        AnnouncementChunk.attempts == chunk.attempts).values(
        status=RUNNING, claimed_at=now, attempts=attempt, resume_at=None)).rowcount
    if not claimed:
        db.session.rollback()
        return "claimed elsewhere"
    announcement = db.session.get(Announcement, chunk.announcement_id)
    if announcement.started_at is None:
        announcement.started_at = now
    keys = _cut(chunk, announcement, now)
    db.session.commit()
    sends = _decide(chunk, announcement, keys, now)
    db.session.commit()
    retry = _send_all(chunk_id, attempt, announcement, sends)
    return _finish(chunk_id, attempt, announcement.id, retry)


def _subscribers(announcement: Announcement, after: str, last: str | None, limit: int | None):
    """(openid, first brand, still subscribed) of the announcement's subscribers in keyset order:
    those subscribed when it was announced (a later unsubscribe still counts them, as skipped)."""
    sub = BrandSubscription
    query = select(sub.openid, func.min(sub.brand_id), func.max(case((sub.active.is_(True), 1), else_=0))).where(
        sub.brand_id.in_(announcement.brand_ids), sub.created_at <= announcement.created_at,
        (sub.active.is_(True)) | (sub.changed_at > announcement.created_at), sub.openid > after)
    if last is not None:
        query = query.where(sub.openid <= last)
    query = query.group_by(sub.openid).order_by(sub.openid)
    if limit is not None:
        query = query.limit(limit)
    return db.session.execute(query).all()


def _cut(chunk: AnnouncementChunk, announcement: Announcement, now: datetime) -> list[tuple[str, int, bool]]:
    """The chunk's shoppers. On its first run this fixes its range and queues the next chunk."""
    if chunk.last_key is not None:
        return [(o, b, bool(a)) for o, b, a in _subscribers(announcement, chunk.after_key, chunk.last_key, None)]
    size = services().settings.BRAND_NEWS_CHUNK_SIZE
    rows = [(o, b, bool(a)) for o, b, a in _subscribers(announcement, chunk.after_key, None, size)]
    chunk.last_key = rows[-1][0] if rows else chunk.after_key
    if len(rows) < size:
        chunk.final = True
        announcement.chunks_total = chunk.seq + 1
        return rows
    made = db.session.execute(insert_for(db.session, AnnouncementChunk).values(
        announcement_id=announcement.id, seq=chunk.seq + 1, after_key=chunk.last_key, status=QUEUED, queued_at=now,
        final=False, attempts=0).on_conflict_do_nothing(index_elements=["announcement_id", "seq"])
        .returning(AnnouncementChunk.id)).scalar()
    if made is not None:
        enqueue_after_commit(news.CHUNK_JOB, chunk_id=made)
    return rows


def _spent_for(announcement: Announcement, openid: str) -> str:
    return f"bn:{announcement.kind[:1]}{announcement.item_id}:{openid}"


def _decide(chunk: AnnouncementChunk, announcement: Announcement, keys: list[tuple[str, int, bool]],
            now: datetime) -> list[dict[str, Any]]:
    """Step 2: one delivery row per shopper not yet delivered to. Returns the sends to make."""
    s = services().settings
    openids = [k[0] for k in keys]
    if not openids:
        return []
    kind, item = announcement.kind, announcement.item_id
    existing = {r.openid: r for r in db.session.execute(select(
        BrandNewsDelivery.id, BrandNewsDelivery.openid, BrandNewsDelivery.status, BrandNewsDelivery.channel,
        BrandNewsDelivery.to_openid, BrandNewsDelivery.brand_id).where(
        BrandNewsDelivery.openid.in_(openids), BrandNewsDelivery.kind == kind, BrandNewsDelivery.item_id == item))}
    sends: list[dict[str, Any]] = []
    for row in existing.values():  # a rerun of a chunk whose worker died mid-send
        if row.status != news.SENDING:
            continue
        if row.channel == reach.TEMPLATE:
            sends.append({"id": row.id, "openid": row.openid, "channel": row.channel, "to": row.to_openid,
                          "brand_id": row.brand_id})
        else:
            db.session.execute(update(BrandNewsDelivery).where(
                BrandNewsDelivery.id == row.id, BrandNewsDelivery.status == news.SENDING).values(
                status=news.UNKNOWN, detail="the worker stopped during the send; a subscribe message is not sent twice"))
    fresh = [k for k in keys if k[0] not in existing]
    if not fresh:
        return sends
    wanted = [k[0] for k in fresh]
    cap = s.BRAND_NEWS_WEEKLY_CAP
    if cap:
        # Two announcements' chunks deciding at once could each see a shopper under the cap and
        # both send; deciding (a few grouped queries, not the sends) is serialized instead.
        lock_for_transaction(db.session, CAP_LOCK)
    recent = dict(db.session.execute(select(BrandNewsDelivery.openid, func.count()).where(
        BrandNewsDelivery.openid.in_(wanted), BrandNewsDelivery.status.in_((news.SENT, news.SENDING)),
        BrandNewsDelivery.created_at > now - timedelta(days=7)).group_by(BrandNewsDelivery.openid)).all()) if cap else {}
    consenting = consents.with_remaining(wanted, s.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID)
    oa_of = reach.oa_openids(wanted) if s.BRAND_NEWS_TEMPLATE_ID else {}
    follows = reach.following(oa_of.values())
    rows: list[dict[str, Any]] = []
    for openid, brand_id, active in fresh:
        row = {"announcement_id": announcement.id, "openid": openid, "kind": kind, "item_id": item,
               "brand_id": brand_id, "status": news.SENDING, "channel": "", "to_openid": "", "detail": "",
               "created_at": now}
        rows.append(row)
        if not active:
            row["status"] = news.UNSUBSCRIBED
            continue
        if cap and recent.get(openid, 0) >= cap:
            row["status"] = news.CAPPED
            continue
        chosen = reach.choose_channel(openid, subscribe_template_id=s.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID,
                                      template_id=s.BRAND_NEWS_TEMPLATE_ID, spent_for=_spent_for(announcement, openid),
                                      find_oa=lambda o=openid: oa_of.get(o), now=now, may_subscribe=openid in consenting)
        if chosen is None:
            row["status"] = news.NO_CHANNEL
            continue
        channel, to = chosen
        if channel == reach.TEMPLATE and not follows.get(to, True):
            row["status"] = news.UNFOLLOWED
            continue
        row["channel"], row["to_openid"] = channel, to
    db.session.execute(insert_for(db.session, BrandNewsDelivery).on_conflict_do_nothing(
        index_elements=["openid", "kind", "item_id"]), rows)
    claimed = [r["openid"] for r in rows if r["status"] == news.SENDING]
    if claimed:
        for r in db.session.execute(select(BrandNewsDelivery.id, BrandNewsDelivery.openid, BrandNewsDelivery.channel,
                                           BrandNewsDelivery.to_openid, BrandNewsDelivery.brand_id).where(
                BrandNewsDelivery.announcement_id == announcement.id, BrandNewsDelivery.openid.in_(claimed),
                BrandNewsDelivery.status == news.SENDING)):
            sends.append({"id": r.id, "openid": r.openid, "channel": r.channel, "to": r.to_openid, "brand_id": r.brand_id})
    return sends


def _thing(text: str) -> str:
    return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"


def payload(announcement: Announcement, said: dict[str, Any], brand: str, send: dict[str, Any]) -> tuple[str, dict]:
    """The WeChat call for one delivery: a subscribe message, or an OA template keyed by
    client_msg_id `bn-<delivery id>` so a resend after a lost answer shows once."""
    s = services().settings
    title = news.KIND_TITLES.get(announcement.kind, "品牌资讯")
    if send["channel"] == reach.SUBSCRIBE:
        return "message/subscribe/send", {
            "touser": send["to"], "template_id": s.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID, "page": said["page"], "lang": "zh_CN",
            "data": {"thing1": {"value": _thing(brand)}, "thing2": {"value": _thing(said["what"])},
                     "time3": {"value": said["when"]}, "thing4": {"value": _thing(said["note"])}}}
    return "message/template/send", {
        "touser": send["to"], "template_id": s.BRAND_NEWS_TEMPLATE_ID, "client_msg_id": f"bn-{send['id']}",
        "data": {"first": {"value": title}, "keyword1": {"value": brand}, "keyword2": {"value": said["what"]},
                 "keyword3": {"value": said["when"]}, "keyword4": {"value": said["note"]}}}


def _send_all(chunk_id: int, attempt: int, announcement: Announcement, sends: list[dict[str, Any]]) -> bool:
    """Step 3. True when some template sends met a transient error (the chunk goes again)."""
    if not sends:
        return False
    said = news.content(announcement)
    brands = news.brand_names(list({s["brand_id"] for s in sends if s["brand_id"]}))
    calls = [(send, payload(announcement, said, brands.get(send["brand_id"], ""), send)) for send in sends]
    oa_client = wechat_client() if any(s["channel"] == reach.TEMPLATE for s in sends) else None
    mp_client = mp_wechat_client() if any(s["channel"] == reach.SUBSCRIBE for s in sends) else None
    db.session.commit()  # nothing held open while WeChat answers
    sent: list[int] = []
    retry = False
    last_flush = time.monotonic()
    for send, (path, body) in calls:
        client = mp_client if send["channel"] == reach.SUBSCRIBE else oa_client
        try:
            client.post(path, data=body)
            sent.append(send["id"])
        except WeChatApiError as exc:
            retry |= _refused(send, announcement, exc)
        if len(sent) >= VERDICT_BATCH or time.monotonic() - last_flush > 5:
            _record_sent(chunk_id, attempt, sent)
            sent, last_flush = [], time.monotonic()
    _record_sent(chunk_id, attempt, sent)
    return retry


def _record_sent(chunk_id: int, attempt: int, ids: list[int]) -> None:
    """Record a batch of verdicts and renew the chunk's lease; commit."""
    now = utcnow()
    if ids:
        db.session.execute(update(BrandNewsDelivery).where(BrandNewsDelivery.id.in_(ids),
                                                           BrandNewsDelivery.status == news.SENDING)
                           .values(status=news.SENT, sent_at=now))
    db.session.execute(update(AnnouncementChunk).where(AnnouncementChunk.id == chunk_id, AnnouncementChunk.status == RUNNING,
                                                       AnnouncementChunk.attempts == attempt).values(claimed_at=now))
    db.session.commit()


def _verdict(delivery_id: int, **values: Any) -> None:
    db.session.execute(update(BrandNewsDelivery).where(BrandNewsDelivery.id == delivery_id,
                                                       BrandNewsDelivery.status == news.SENDING).values(**values))
    db.session.commit()


def _refused(send: dict[str, Any], announcement: Announcement, exc: WeChatApiError) -> bool:
    """WeChat refused one send. True when it should be tried again (a transient template error)."""
    detail = f"{exc.errcode}: {exc.errmsg}"[:256]
    if send["channel"] == reach.SUBSCRIBE:
        if exc.errcode == USER_REFUSED:
            consents.exhaust(send["openid"], services().settings.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID,
                             "refused by WeChat: 43101")
        elif exc.errcode is not None:
            consents.give_back(_spent_for(announcement, send["openid"]))  # nothing was shown
        elif exc.transient:
            _verdict(send["id"], status=news.UNKNOWN, detail="no answer from WeChat; a subscribe message is not sent twice")
            return False
        _verdict(send["id"], status=news.FAILED, wechat_errcode=exc.errcode, detail=detail)
        return False
    if exc.errcode == REQUIRE_SUBSCRIBE:
        _verdict(send["id"], status=news.UNFOLLOWED, wechat_errcode=exc.errcode, detail=detail)
        return False
    if exc.transient:
        return True  # stays `sending`: the chunk runs again and resends with the same client_msg_id
    _verdict(send["id"], status=news.FAILED, wechat_errcode=exc.errcode, detail=detail)
    log.info("brand news refused by WeChat", extra={"delivery": send["id"], "errcode": exc.errcode})
    return False


def _finish(chunk_id: int, attempt: int, announcement_id: int, retry: bool) -> str:
    """Step 4: done (or queued again for the transient failures), and the progress refreshed."""
    now = utcnow()
    if retry and attempt < MAX_ATTEMPTS:
        moved = db.session.execute(update(AnnouncementChunk).where(
            AnnouncementChunk.id == chunk_id, AnnouncementChunk.status == RUNNING, AnnouncementChunk.attempts == attempt)
            .values(status=QUEUED, queued_at=now)).rowcount
        if moved:
            enqueue_after_commit(news.CHUNK_JOB, chunk_id=chunk_id, delay=TRANSIENT_RETRY_SECONDS)
        news.refresh_progress(announcement_id, now)
        return QUEUED
    if retry:
        db.session.execute(update(BrandNewsDelivery).where(
            BrandNewsDelivery.announcement_id == announcement_id, BrandNewsDelivery.status == news.SENDING,
            BrandNewsDelivery.channel == reach.TEMPLATE).values(status=news.FAILED, detail="WeChat stayed unavailable"))
    db.session.execute(update(AnnouncementChunk).where(
        AnnouncementChunk.id == chunk_id, AnnouncementChunk.status == RUNNING, AnnouncementChunk.attempts == attempt)
        .values(status=DONE, finished_at=now))
    news.refresh_progress(announcement_id, now)
    return DONE


def resume_stalled(now: datetime | None = None) -> dict[str, int]:
    """Every minute: a chunk whose worker died (running, its lease lapsed), whose job was lost
    (queued too long) or whose wake-up after the quiet hours was lost is queued again."""
    now = now or utcnow()
    cutoff = now - LEASE
    c = AnnouncementChunk
    stalled = db.session.scalars(select(c).where(
        ((c.status == RUNNING) & (c.claimed_at < cutoff)) | ((c.status == QUEUED) & (c.queued_at < cutoff))
        | ((c.status == WAITING) & (c.resume_at < cutoff))).order_by(c.id).limit(200)).all()
    counts = {"requeued": 0}
    for chunk in stalled:
        moved = db.session.execute(update(c).where(c.id == chunk.id, c.status == chunk.status,
                                                   c.attempts == chunk.attempts).values(
            status=QUEUED, queued_at=now)).rowcount
        if moved:
            enqueue_after_commit(news.CHUNK_JOB, chunk_id=chunk.id)
            counts["requeued"] += 1
    return counts
