"""Background work of reservations: sending notices through WeChat, queueing reminders, and the
sweeps (holds past expiry, waiting-list offers past their time, no-shows, notices a lost job left).

Sending a notice, so that a shopper gets it once whatever the queue and the workers do:

  1. claim it: `pending -> sending` by a compare-and-swap, with the channel chosen and (for a
     mini-program subscribe message) one consent spent in the same transaction; commit. A second
     job for the same notice (a duplicated scheduler run) finds it claimed and stops.
  2. call WeChat with no transaction open;
  3. record the verdict (sent, or failed with WeChat's errcode).

A worker killed between 1 and 3 leaves the notice `sending`. On the OA template channel the send
carries `client_msg_id = rsv-<notice id>`, which WeChat deduplicates (reference §7.6), so the
stalled-notice sweep sends it again and the shopper still sees it once. A subscribe message has no
such key: sending again could show it twice and would spend a second consent, so a subscribe
notice stalled in `sending` is marked `unknown` for staff to see, never repeated.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from members import consents
from members.models import MemberIdentity
from reservations import bookings, holds, notices, slots, waitlist
from reservations.models import Booking, GoodsHold, HoldableVariant, Notice, Resource, Service, WaitlistEntry
from reservations.states import BOOKED
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, services, wechat_client
from wx_service.ground.mp_client import mp_wechat_client
from wx_service.ground.wechat_client import WeChatApiError

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, SKIPPED, UNKNOWN = "pending", "sending", "sent", "failed", "skipped", "unknown"
SUBSCRIBE, TEMPLATE = "subscribe", "template"
STALLED_AFTER = timedelta(minutes=2)
USER_REFUSED = 43101  # no consent left for this template (reference §7.7)

TITLES = {"confirmed": "预约成功", "requested": "预约待门店确认", "changed": "预约已改期", "cancelled": "预约已取消",
          "offer": "候补名额已为您保留", "held": "商品已为您保留", "reminder": "预约提醒"}


def _store_time(at: datetime) -> str:
    return at.astimezone(slots.STORE_ZONE).strftime("%Y-%m-%d %H:%M")


def _content(notice: Notice) -> dict[str, str]:
    """What the notice says: title, what, when, where, note (each short enough for a `thing`)."""
    kind, _, ident = notice.subject.partition(":")
    title = TITLES.get(notice.kind.split("_")[0], "预约通知")
    if kind == "booking":
        booking = db.session.get(Booking, int(ident))
        service = db.session.get(Service, booking.service_id)
        resource = db.session.get(Resource, booking.resource_id)
        note = {"cancelled": booking.cancel_reason or "如有疑问请联系柜台", "requested": "门店确认后将通知您"}.get(
            notice.kind, f"到店出示预约码 {booking.visit_code}")
        if notice.kind.startswith("reminder"):
            note = f"请准时到店，出示预约码 {booking.visit_code}"
        return {"title": title, "what": service.name, "when": _store_time(booking.starts_at),
                "where": f"{service.counter_code} {resource.name}", "note": note}
    if kind == "hold":
        hold = db.session.get(GoodsHold, int(ident))
        variant = db.session.get(HoldableVariant, hold.variant_id)
        return {"title": title if notice.kind != "confirmed" else "门店已确认保留",
                "what": f"{variant.brand} {variant.product} {variant.variant}",
                "when": f"{hold.visit_day.isoformat()} 至 {_store_time(hold.expires_at)}", "where": variant.counter_code,
                "note": "已取消" if notice.kind == "cancelled" else f"到店出示预约码 {hold.visit_code}"}
    entry = db.session.get(WaitlistEntry, int(ident))
    service = db.session.get(Service, entry.service_id)
    until = entry.offered_until.astimezone(slots.STORE_ZONE).strftime("%H:%M") if entry.offered_until else ""
    return {"title": title, "what": service.name, "when": _store_time(entry.starts_at), "where": service.counter_code,
            "note": f"请在{until}前确认，逾时将顺延给下一位"}


def _thing(text: str) -> str:
    return text[:20]  # a subscribe message's `thing` keyword takes 20 characters (47003 beyond)


def _payload(notice: Notice, channel: str, openid: str) -> tuple[str, dict[str, Any]]:
    c = _content(notice)
    s = services().settings
    if channel == SUBSCRIBE:
        return "message/subscribe/send", {
            "touser": openid, "template_id": s.RESERVATION_SUBSCRIBE_TEMPLATE_ID,
            "page": f"pages/reservations/index?notice={notice.id}", "lang": "zh_CN",
            "data": {"thing1": {"value": _thing(c["what"])}, "time2": {"value": c["when"][:16]},
                     "thing3": {"value": _thing(c["where"])}, "thing4": {"value": _thing(c["note"])}}}
    return "message/template/send", {
        "touser": openid, "template_id": s.RESERVATION_TEMPLATE_ID, "client_msg_id": f"rsv-{notice.id}",
        "data": {"first": {"value": c["title"]}, "keyword1": {"value": c["what"]}, "keyword2": {"value": c["when"]},
                 "keyword3": {"value": c["where"]}, "remark": {"value": c["note"]}}}


def _oa_openid(notice: Notice) -> str | None:
    """Where an OA template reaches this shopper: the openid itself when the OA and the mini-program
    are one app (or the notice came from the OA's H5 pages), else the member's OA identity."""
    s = services().settings
    if s.mp_appid == s.WECHAT_APPID:
        return notice.openid
    oa = db.session.scalar(select(MemberIdentity.openid).where(
        MemberIdentity.kind == "oa", MemberIdentity.member_id.in_(
            select(MemberIdentity.member_id).where(MemberIdentity.openid == notice.openid))))
    return oa or (notice.openid if _from_oa(notice) else None)


def _from_oa(notice: Notice) -> bool:
    kind, _, ident = notice.subject.partition(":")
    if kind == "booking":
        return db.session.get(Booking, int(ident)).channel in ("h5", "console")
    return False


def _choose_channel(notice: Notice, now: datetime) -> tuple[str, str] | None:
    """(channel, openid): a subscribe message where a consent remains (spending it), else the OA
    template; None when neither can reach the shopper."""
    s = services().settings
    if s.RESERVATION_SUBSCRIBE_TEMPLATE_ID and consents.spend(notice.openid, s.RESERVATION_SUBSCRIBE_TEMPLATE_ID,
                                                              f"notice:{notice.id}", now=now):
        return SUBSCRIBE, notice.openid
    oa = _oa_openid(notice) if s.RESERVATION_TEMPLATE_ID else None
    return (TEMPLATE, oa) if oa else None


def _finish(notice_id: int, **values: Any) -> None:
    db.session.execute(update(Notice).where(Notice.id == notice_id).values(**values))
    db.session.commit()


def send_notice(notice_id: int) -> str:
    """Job: send one notice (see the module doc). Returns its status afterwards."""
    now = utcnow()
    notice = db.session.get(Notice, notice_id)
    if notice is None:
        return "gone"
    if notice.status == PENDING:
        chosen = _choose_channel(notice, now)
        if chosen is None:
            _finish(notice.id, status=SKIPPED, detail="no consent left and no OA template can reach this shopper")
            return SKIPPED
        channel, openid = chosen
        claimed = db.session.execute(update(Notice).where(Notice.id == notice.id, Notice.status == PENDING).values(
            status=SENDING, channel=channel, started_at=now, attempts=Notice.attempts + 1)).rowcount
        if not claimed:
            db.session.rollback()  # another job has it; the consent we spent goes back with the rollback
            return "claimed elsewhere"
        db.session.commit()
    elif notice.status == SENDING and notice.channel == TEMPLATE:
        channel, openid = TEMPLATE, _oa_openid(notice)  # a resend: WeChat drops the duplicate by client_msg_id
        db.session.execute(update(Notice).where(Notice.id == notice.id).values(attempts=Notice.attempts + 1,
                                                                              started_at=now))
        db.session.commit()
    else:
        return notice.status
    notice = db.session.get(Notice, notice_id, populate_existing=True)
    path, body = _payload(notice, channel, openid)
    client = mp_wechat_client() if channel == SUBSCRIBE else wechat_client()
    db.session.commit()  # nothing held open while WeChat answers
    try:
        client.post(path, data=body)
    except WeChatApiError as exc:
        return _refused(notice_id, channel, exc)
    _finish(notice_id, status=SENT, sent_at=utcnow(), wechat_errcode=None, detail="")
    return SENT


def _refused(notice_id: int, channel: str, exc: WeChatApiError) -> str:
    if channel == SUBSCRIBE and exc.errcode == USER_REFUSED:
        # WeChat holds no consent where our ledger thought one remained: try the OA template.
        _finish(notice_id, status=PENDING, channel=None, wechat_errcode=exc.errcode, detail="43101: no consent left")
        return send_notice(notice_id)
    if exc.transient and exc.errcode is not None:
        # WeChat answered "busy": nothing was shown. Unclaim (and unspend) and let the queue retry.
        if channel == SUBSCRIBE:
            consents.give_back(f"notice:{notice_id}")
        _finish(notice_id, status=PENDING, channel=None, wechat_errcode=exc.errcode, detail=exc.errmsg[:256])
        raise exc
    if exc.transient and channel == TEMPLATE:
        raise exc  # no answer: the retry sends again with the same client_msg_id
    if exc.transient:
        _finish(notice_id, status=UNKNOWN, detail="no answer from WeChat; a subscribe message is not sent twice")
        return UNKNOWN
    _finish(notice_id, status=FAILED, wechat_errcode=exc.errcode, detail=exc.errmsg[:256])
    log.info("reservation notice refused by WeChat", extra={"notice": notice_id, "errcode": exc.errcode})
    return FAILED


def queue_reminders(now: datetime | None = None) -> int:
    """Every minute: each booked appointment whose reminder time has come gets its reminder queued,
    once per kind (the unique (subject, kind) drops repeats). Only the latest due kind is queued: a
    scheduler back after an outage sends the 2-hour reminder, not a late 24-hour one too; and a
    booking made inside a reminder's window needs no reminder of that kind (its confirmation says
    it all). Returns how many were queued."""
    now = now or utcnow()
    minutes = sorted(services().settings.RESERVATION_REMINDERS)
    if not minutes:
        return 0
    due = db.session.scalars(select(Booking).where(Booking.status == BOOKED, Booking.starts_at > now,
                                                   Booking.starts_at <= now + timedelta(minutes=minutes[-1]))
                             .order_by(Booking.starts_at).limit(5000)).all()
    have = {(subject, kind) for subject, kind in db.session.execute(select(Notice.subject, Notice.kind).where(
        Notice.subject.in_([bookings.subject(b.id) for b in due]), Notice.kind.like("reminder_%")))} if due else set()
    queued = 0
    for booking in due:
        m = next(m for m in minutes if booking.starts_at - timedelta(minutes=m) <= now)
        kind = f"reminder_{m}"
        if (bookings.subject(booking.id), kind) in have or booking.created_at >= booking.starts_at - timedelta(minutes=m):
            continue
        if notices.queue(bookings.subject(booking.id), kind, booking.openid, now=now) is not None:
            queued += 1
    return queued


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Every minute: holds past expiry, waiting-list offers past their time, no-shows. Each part is
    idempotent (compare-and-swap moves), so two schedulers do no harm."""
    now = now or utcnow()
    return {"holds_expired": holds.expire_due(now), "offers_lapsed": waitlist.lapse_due(now),
            "no_shows": bookings.mark_no_shows(now)}


def resume_stalled_notices(now: datetime | None = None) -> dict[str, int]:
    """Every minute: a notice whose job was lost (pending too long) is queued again; a template
    notice left `sending` by a killed worker is sent again (WeChat drops the duplicate); a
    subscribe notice left `sending` is marked unknown (see the module doc)."""
    now = now or utcnow()
    cutoff = now - STALLED_AFTER
    counts = {"requeued": 0, "unknown": 0}
    for notice in db.session.scalars(select(Notice).where(
            Notice.status.in_((PENDING, SENDING)), Notice.created_at < cutoff).order_by(Notice.id).limit(500)):
        if notice.status == SENDING and (notice.started_at or notice.created_at) >= cutoff:
            continue  # a worker is on it now
        if notice.status == SENDING and notice.channel == SUBSCRIBE:
            moved = db.session.execute(update(Notice).where(Notice.id == notice.id, Notice.status == SENDING).values(
                status=UNKNOWN, detail="the worker stopped during the send; a subscribe message is not sent twice"))
            counts["unknown"] += moved.rowcount
            continue
        enqueue_after_commit(notices.SEND_JOB, notice_id=notice.id)
        counts["requeued"] += 1
    return counts
