"""Background work of reservations: sending notices through WeChat, queueing reminders, and the
sweeps (holds past expiry, waiting-list offers past their time, no-shows, notices a lost job left).

Which channel carries a notice: a mini-program subscribe message (reference §7.7) while the
shopper has an unspent one-time consent for RESERVATION_SUBSCRIBE_TEMPLATE_ID, spending exactly
one; otherwise the OA template message (RESERVATION_TEMPLATE_ID, §7.6) to the shopper's OA openid;
neither: the notice is `skipped` (counted, not failed).

Sending a notice, so that a shopper gets it once whatever the queue and the workers do:

  1. claim it: `pending -> sending` by a compare-and-swap, with the channel chosen and (for a
     subscribe message) one consent spent in the same transaction; commit. A second job for the
     same notice (a duplicated scheduler run) finds it claimed and stops.
  2. call WeChat with no transaction open;
  3. record the verdict (sent, failed, unknown), again as a compare-and-swap from `sending`, so a
     late verdict never overwrites an earlier one.

WeChat's rule for a one-time consent: a message it delivered uses it; a send it refused with an
errcode (47003 a bad value, 40003, 40037, -1 busy) does not, so the consent is given back. 43101
means WeChat holds no consent where our ledger thought one remained: the ledger's others for that
template are spent too (they are not WeChat's), and the notice goes as an OA template instead.

A worker killed between 1 and 3 leaves the notice `sending`. On the OA template channel the send
carries `client_msg_id = rsv-<notice id>`, which WeChat deduplicates (§7.6), so the stalled-notice
sweep sends it again and the shopper still sees it once. A subscribe message has no such key:
sending again could show it twice and would spend a second consent, so a subscribe notice stalled
in `sending` is marked `unknown` for staff to see, never repeated. A notice still `pending` after
STALLED_AFTER (its job was lost, or the worker died before claiming) is queued again; one pending
past GIVE_UP_AFTER is failed, as the moment it was about has passed.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from members import consents, reach
from reservations import bookings, holds, notices, slots, waitlist
from reservations.models import Booking, GoodsHold, HoldableVariant, Notice, Resource, Service, WaitlistEntry
from reservations.states import BOOKED
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, services, wechat_client
from wx_service.ground.mp_client import mp_wechat_client
from wx_service.ground.wechat_client import WeChatApiError

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, SKIPPED, UNKNOWN = "pending", "sending", "sent", "failed", "skipped", "unknown"
SUBSCRIBE, TEMPLATE = reach.SUBSCRIBE, reach.TEMPLATE
STALLED_AFTER = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(hours=6)
USER_REFUSED = 43101  # no consent left for this template (reference §7.7)
THING_MAX = 20  # a subscribe message's `thing` value: at most 20 characters, else 47003 (§7.7)

# What each kind is, in words: the OA template's keyword4 and (at most five characters, as a
# subscribe `phrase` must be) the subscribe message's phrase5.
TITLES = {"confirmed": "预约成功", "requested": "待门店确认", "changed": "预约已改期", "cancelled": "预约已取消",
          "offer": "候补有名额", "held": "商品已保留", "reminder": "预约提醒"}
HOLD_TITLES = {"held": "商品已保留", "confirmed": "保留已确认", "cancelled": "保留已取消"}


def _store_time(at: datetime) -> str:
    return at.astimezone(slots.STORE_ZONE).strftime("%Y-%m-%d %H:%M")


def _content(notice: Notice) -> dict[str, str]:
    """What the notice says: title, what, when (a store-time "YYYY-MM-DD HH:MM", as a subscribe
    `time` value must be), where, note."""
    kind, _, ident = notice.subject.partition(":")
    title = TITLES.get(notice.kind.split("_")[0], "预约通知")
    if kind == "booking":
        booking = db.session.get(Booking, int(ident))
        service = db.session.get(Service, booking.service_id)
        resource = db.session.get(Resource, booking.resource_id)
        note = {"cancelled": booking.cancel_reason or "如有疑问请联系柜台",
                "requested": f"门店确认后通知您 预约码{booking.visit_code}"}.get(
            notice.kind, f"到店出示预约码{booking.visit_code}")
        if notice.kind.startswith("reminder"):
            note = f"请准时到店 预约码{booking.visit_code}"
        return {"title": title, "what": service.name, "when": _store_time(booking.starts_at),
                "where": f"{service.counter_code} {resource.name}", "note": note}
    if kind == "hold":
        hold = db.session.get(GoodsHold, int(ident))
        variant = db.session.get(HoldableVariant, hold.variant_id)
        return {"title": HOLD_TITLES.get(notice.kind, title),
                "what": f"{variant.brand} {variant.product} {variant.variant}",
                "when": _store_time(hold.expires_at), "where": variant.counter_code,
                "note": "保留已取消" if notice.kind == "cancelled" else f"到店出示预约码{hold.visit_code}"}
    entry = db.session.get(WaitlistEntry, int(ident))
    service = db.session.get(Service, entry.service_id)
    until = entry.offered_until.astimezone(slots.STORE_ZONE).strftime("%H:%M") if entry.offered_until else ""
    return {"title": title, "what": service.name, "when": _store_time(entry.starts_at), "where": service.counter_code,
            "note": f"请在{until}前确认，逾时顺延"}


def _thing(text: str) -> str:
    """A `thing` value within WeChat's 20 characters: cut, with an ellipsis saying so."""
    return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"


def _payload(notice: Notice, channel: str, openid: str) -> tuple[str, dict[str, Any]]:
    c = _content(notice)
    s = services().settings
    if channel == SUBSCRIBE:
        return "message/subscribe/send", {
            "touser": openid, "template_id": s.RESERVATION_SUBSCRIBE_TEMPLATE_ID,
            "page": f"pages/reservations/index?notice={notice.id}", "lang": "zh_CN",
            "data": {"thing1": {"value": _thing(c["what"])}, "time2": {"value": c["when"]},
                     "thing3": {"value": _thing(c["where"])}, "thing4": {"value": _thing(c["note"])},
                     "phrase5": {"value": c["title"][:5]}}}
    # `first` and `remark` are legacy fields the current template UI ignores (§7.6): the kind of
    # notice and the visit code ride in keywords, which the shopper sees.
    return "message/template/send", {
        "touser": openid, "template_id": s.RESERVATION_TEMPLATE_ID, "client_msg_id": f"rsv-{notice.id}",
        "data": {"keyword1": {"value": c["what"]}, "keyword2": {"value": c["when"]},
                 "keyword3": {"value": c["where"]}, "keyword4": {"value": c["title"]},
                 "keyword5": {"value": c["note"]}}}


def _oa_openid(notice: Notice) -> str | None:
    """Where an OA template reaches this shopper (members.reach), or for a booking made on the OA
    side (H5, the console) the openid itself."""
    oa = reach.oa_openid(notice.openid)
    if oa is not None:
        return oa
    return notice.openid if _from_oa(notice) else None


def _from_oa(notice: Notice) -> bool:
    kind, _, ident = notice.subject.partition(":")
    if kind == "booking":
        return db.session.get(Booking, int(ident)).channel in ("h5", "console")
    return False


def _choose_channel(notice: Notice, now: datetime) -> tuple[str, str] | None:
    """(channel, openid): a subscribe message where a consent remains (spending it), else the OA
    template; None when neither can reach the shopper (members.reach makes the choice)."""
    s = services().settings
    return reach.choose_channel(notice.openid, subscribe_template_id=s.RESERVATION_SUBSCRIBE_TEMPLATE_ID,
                                template_id=s.RESERVATION_TEMPLATE_ID, spent_for=_spent_for(notice.id),
                                find_oa=lambda: _oa_openid(notice), now=now)


def _spent_for(notice_id: int) -> str:
    return f"notice:{notice_id}"


def _finish(notice_id: int, expected: str, **values: Any) -> bool:
    """Record a verdict if the notice is still where this job left it; commit either way."""
    moved = db.session.execute(update(Notice).where(Notice.id == notice_id, Notice.status == expected)
                               .values(**values)).rowcount
    db.session.commit()
    return bool(moved)


def _obsolete(notice: Notice) -> str:
    """Why a notice need not go any more ("" when it still should): a reminder of a booking that
    was cancelled, moved or has started."""
    if not notice.kind.startswith("reminder") or not notice.subject.startswith("booking:"):
        return ""
    booking = db.session.get(Booking, int(notice.subject.partition(":")[2]))
    if booking is None or booking.status != BOOKED:
        return "the booking is no longer booked"
    return ""


def send_notice(notice_id: int) -> str:
    """Job: send one notice (see the module doc). Returns its status afterwards."""
    now = utcnow()
    notice = db.session.get(Notice, notice_id)
    if notice is None:
        return "gone"
    if notice.status == PENDING:
        why_not = _obsolete(notice)
        if why_not:
            _finish(notice.id, PENDING, status=SKIPPED, detail=why_not)
            return SKIPPED
        chosen = _choose_channel(notice, now)
        if chosen is None:
            db.session.rollback()
            _finish(notice.id, PENDING, status=SKIPPED,
                    detail="no consent left and no OA template can reach this shopper")
            return SKIPPED
        channel, openid = chosen
        claimed = db.session.execute(update(Notice).where(Notice.id == notice.id, Notice.status == PENDING).values(
            status=SENDING, channel=channel, started_at=now, attempts=Notice.attempts + 1)).rowcount
        if not claimed:
            db.session.rollback()  # another job has it; the consent we spent goes back with the rollback
            return "claimed elsewhere"
        db.session.commit()
    elif notice.status == SENDING and notice.channel == TEMPLATE:
        openid = _oa_openid(notice)  # a resend: WeChat drops the duplicate by client_msg_id
        channel = TEMPLATE
        db.session.execute(update(Notice).where(Notice.id == notice.id).values(attempts=Notice.attempts + 1,
                                                                              started_at=now))
        db.session.commit()
        if openid is None:
            _finish(notice_id, SENDING, status=FAILED, detail="the shopper's OA openid is gone")
            return FAILED
    else:
        return notice.status
    return _send(notice_id, channel, openid)


def _send(notice_id: int, channel: str, openid: str) -> str:
    """Steps 2 and 3 for a notice claimed (`sending`) on `channel`."""
    notice = db.session.get(Notice, notice_id, populate_existing=True)
    path, body = _payload(notice, channel, openid)
    client = mp_wechat_client() if channel == SUBSCRIBE else wechat_client()
    db.session.commit()  # nothing held open while WeChat answers
    try:
        client.post(path, data=body)
    except WeChatApiError as exc:
        return _refused(notice_id, channel, exc)
    _finish(notice_id, SENDING, status=SENT, sent_at=utcnow())
    return SENT


def _refused(notice_id: int, channel: str, exc: WeChatApiError) -> str:
    if channel == SUBSCRIBE and exc.errcode is not None:
        notice = db.session.get(Notice, notice_id, populate_existing=True)
        template_id = services().settings.RESERVATION_SUBSCRIBE_TEMPLATE_ID
        if exc.errcode == USER_REFUSED:
            # WeChat holds no consent for this shopper: ours were not WeChat's. Spend them all.
            consents.exhaust(notice.openid, template_id, "refused by WeChat: 43101")
        else:
            consents.give_back(_spent_for(notice_id))  # a refused send does not use the consent
        if exc.transient:
            # WeChat answered "busy": nothing was shown. Unclaim and let the queue retry.
            _finish(notice_id, SENDING, status=PENDING, channel=None, wechat_errcode=exc.errcode,
                    detail=exc.errmsg[:256])
            raise exc
        return _fall_back_to_template(notice, exc)
    if exc.transient and exc.errcode is not None:
        _finish(notice_id, SENDING, status=PENDING, channel=None, wechat_errcode=exc.errcode, detail=exc.errmsg[:256])
        raise exc  # busy: nothing was shown; the retry claims it again
    if exc.transient and channel == TEMPLATE:
        raise exc  # no answer: the retry sends again with the same client_msg_id
    if exc.transient:
        _finish(notice_id, SENDING, status=UNKNOWN, detail="no answer from WeChat; a subscribe message is not sent twice")
        return UNKNOWN
    _finish(notice_id, SENDING, status=FAILED, wechat_errcode=exc.errcode, detail=exc.errmsg[:256])
    log.info("reservation notice refused by WeChat", extra={"notice": notice_id, "errcode": exc.errcode})
    return FAILED


def _fall_back_to_template(notice: Notice, exc: WeChatApiError) -> str:
    """The subscribe message was refused (nothing shown): the OA template carries it, if it can."""
    openid = _oa_openid(notice) if services().settings.RESERVATION_TEMPLATE_ID else None
    detail = f"subscribe refused ({exc.errcode}: {exc.errmsg})"[:256]
    if openid is None:
        _finish(notice.id, SENDING, status=SKIPPED, wechat_errcode=exc.errcode, detail=detail)
        return SKIPPED
    if not _finish(notice.id, SENDING, channel=TEMPLATE, wechat_errcode=exc.errcode, detail=detail):
        return "claimed elsewhere"
    return _send(notice.id, TEMPLATE, openid)


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
    """Every minute: a notice whose job was lost, or whose worker died before claiming it (pending
    too long), is queued again; a template notice left `sending` by a killed worker is sent again
    (WeChat drops the duplicate by client_msg_id); a subscribe notice left `sending` is marked
    unknown (see the module doc); a notice pending past GIVE_UP_AFTER fails."""
    now = now or utcnow()
    cutoff = now - STALLED_AFTER
    counts = {"requeued": 0, "unknown": 0, "given_up": 0}
    for notice in db.session.scalars(select(Notice).where(
            Notice.status.in_((PENDING, SENDING)), Notice.created_at < cutoff).order_by(Notice.id).limit(500)):
        if notice.status == SENDING and (notice.started_at or notice.created_at) >= cutoff:
            continue  # a worker is on it now
        if notice.status == PENDING and notice.created_at < now - GIVE_UP_AFTER:
            counts["given_up"] += db.session.execute(update(Notice).where(
                Notice.id == notice.id, Notice.status == PENDING).values(
                status=FAILED, detail="never sent: WeChat stayed unavailable")).rowcount
            continue
        if notice.status == SENDING and notice.channel == SUBSCRIBE:
            moved = db.session.execute(update(Notice).where(Notice.id == notice.id, Notice.status == SENDING).values(
                status=UNKNOWN, detail="the worker stopped during the send; a subscribe message is not sent twice"))
            counts["unknown"] += moved.rowcount
            continue
        enqueue_after_commit(notices.SEND_JOB, notice_id=notice.id)
        counts["requeued"] += 1
    return counts
