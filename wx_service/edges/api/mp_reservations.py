"""The mini-program's reservation routes under /api/mp (issue 11): services and their free slots,
booking, rescheduling and cancelling, the waiting list, goods held for a try-on, the visit QR, and
the subscribe-message consents the mini-program reports.

Thin, as mp.py: a sibling blueprint mounted at the same prefix, authenticated by the same bearer
session, answering the same JSON errors. Each request is one unit of work; the domain refusals
(reservations.exceptions) become 4xx answers with an `error` code and the domain's own words, and
roll the unit of work back, so a refused request changes nothing. Writes that create something
need an `Idempotency-Key` header: the same key again answers the first result with 200, not 201.

Times go out in the store's zone (ISO-8601 with +08:00): the shopper reads the store's clock, and
the offset keeps every value unambiguous. Times come in with an offset or are refused (400).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from members import consents
from reservations import bookings, holds, listings, slots, waitlist
from reservations.exceptions import (BadTime, LimitReached, NotAllowed, ReservationError, SoldOut, TooLate,
                                     UnknownReservation)
from reservations.models import Booking, GoodsHold, HoldableVariant, Resource, Service, WaitlistEntry
from reservations.states import CANCELLED, OPEN
from wx_service.edges.api import mp_sessions
from wx_service.edges.api.mp import ApiError, _body, _member_id, authenticated, error, json_api_plumbing
from wx_service.edges.api.mp_bodies import (MAX_ID, BookRequest, CancelRequest, ConsentRequest, HoldRequest,
                                            RescheduleRequest, WaitlistRequest, parse_day)
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, settings
from wx_service.ground.qr_images import qr_png_bytes

bp = Blueprint("mp_reservations", __name__)
log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")
MAX_DAYS_FROM_TODAY = 400  # a day further than this from today is a typo, not a plan

# Each refusal of the domain: (status, error code). SoldOut is "full" for a slot ("sold_out" for goods).
REFUSALS: dict[type[ReservationError], tuple[int, str]] = {
    UnknownReservation: (404, "not_found"),
    BadTime: (422, "bad_time"),
    SoldOut: (409, "full"),
    LimitReached: (409, "limit_reached"),
    TooLate: (409, "too_late"),
    NotAllowed: (409, "not_allowed"),
}


# -- plumbing --------------------------------------------------------------------------------------

json_api_plumbing(bp, "mini-program reservations API")


@bp.errorhandler(ReservationError)
def _refused(exc: ReservationError) -> Response:
    status, code = next((v for k, v in REFUSALS.items() if isinstance(exc, k)), (409, "not_allowed"))
    extra = {"can_join_waitlist": True} if code == "full" else {}
    return error(status, code, str(exc), **extra)


def _id(value: int, what: str) -> int:
    """A path id; one past the database's range is answered as unknown (never reaches Postgres)."""
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", f"no {what} {value}")
    return value


def idempotency_key() -> str:
    """The request's Idempotency-Key header: required on every write that creates something, so a
    retried tap (a flaky network, a double tap) gets the first answer instead of a second booking."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        raise ApiError(400, "idempotency_key_required",
                       f"send an {IDEMPOTENCY_HEADER} header (e.g. a UUID made once per tap) so a retry books once")
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(400, "bad_request", f"{IDEMPOTENCY_HEADER} is 1-64 letters, digits, '-', '_', ':' or '.'")
    return key


def _parsed(shape: type) -> Any:
    """The body as `shape`; a time without (or with a wrong) zone offset is a `bad_time` 400."""
    try:
        return _body(shape)
    except ApiError as exc:
        if exc.extra.get("field") in ("starts_at", "visit_day"):
            raise ApiError(400, "bad_time", exc.message, field=exc.extra["field"]) from None
        raise


def _created_or_replayed(made_at: datetime, now: datetime) -> int:
    """201 for what this request made, 200 for the first answer to a key seen before."""
    return 201 if made_at == now else 200


# -- JSON shapes (documented in mp_openapi.RESERVATION_SCHEMAS) ------------------------------------

def store_iso(at: datetime | None) -> str | None:
    """The store's wall clock with its offset, e.g. 2026-12-05T14:00:00+08:00."""
    return at.astimezone(slots.STORE_ZONE).isoformat(timespec="seconds") if at is not None else None


def service_json(service: Service) -> dict[str, Any]:
    return {"id": service.id, "code": service.code, "name": service.name, "counter": service.counter_code,
            "duration_minutes": service.duration_minutes, "description": service.description or "",
            "lead_minutes": service.lead_minutes, "horizon_days": service.horizon_days}


def slot_json(view: bookings.SlotView) -> dict[str, Any]:
    return {"starts_at": store_iso(view.starts_at), "ends_at": store_iso(view.ends_at), "capacity": view.capacity,
            "free": view.free, "waiting": view.waiting, "can_book": view.free > 0, "can_join_waitlist": view.free == 0}


def _change_until(booking: Booking) -> datetime:
    return booking.starts_at - timedelta(minutes=settings().RESERVATION_CUTOFF_MINUTES)


def booking_json(booking: Booking, service: Service, resource: Resource | None, base: str,
                 now: datetime) -> dict[str, Any]:
    """`base`: where this edge serves the QR (/api/mp or the H5 pages)."""
    changeable = booking.status in OPEN and _change_until(booking) > now
    return {"id": booking.id, "status": booking.status, "service": service_json(service),
            "resource": {"id": resource.id, "name": resource.name, "kind": resource.kind} if resource else None,
            "starts_at": store_iso(booking.starts_at), "ends_at": store_iso(booking.ends_at),
            "visit_code": booking.visit_code, "qr_url": f"{base}/bookings/{booking.id}/qr.png",
            "channel": booking.channel, "previous_id": booking.previous_id,
            "cancel_reason": booking.cancel_reason or "", "created_at": store_iso(booking.created_at),
            "change_until": store_iso(_change_until(booking)), "can_cancel": changeable, "can_reschedule": changeable}


def waitlist_json(entry: WaitlistEntry, service: Service) -> dict[str, Any]:
    return {"id": entry.id, "status": entry.status, "service": service_json(service),
            "starts_at": store_iso(entry.starts_at), "position": waitlist.position(entry),
            "offered_until": store_iso(entry.offered_until), "booking_id": entry.booking_id,
            "created_at": store_iso(entry.created_at)}


def goods_json(variant: HoldableVariant) -> dict[str, Any]:
    return {"id": variant.id, "counter": variant.counter_code, "brand": variant.brand, "product": variant.product,
            "variant": variant.variant, "available": max(variant.holdable - variant.held, 0)}


def hold_json(hold: GoodsHold, variant: HoldableVariant, base: str) -> dict[str, Any]:
    return {"id": hold.id, "status": hold.status, "goods": goods_json(variant), "visit_day": hold.visit_day.isoformat(),
            "expires_at": store_iso(hold.expires_at), "visit_code": hold.visit_code,
            "qr_url": f"{base}/holds/{hold.id}/qr.png", "created_at": store_iso(hold.created_at),
            "can_cancel": hold.status in ("held", "confirmed")}


def one_booking(booking: Booking, base: str, now: datetime) -> dict[str, Any]:
    service = db.session.get(Service, booking.service_id)
    return booking_json(booking, service, db.session.get(Resource, booking.resource_id), base, now)


def mine(openid: str, base: str, now: datetime) -> dict[str, Any]:
    """Everything the shopper has coming: bookings, waiting-list places, holds (a few queries)."""
    today = slots.store_day(now)
    booked = [b for b in bookings.open_of(openid) if slots.store_day(b.starts_at) >= today]  # not past visits
    places = listings.waitlist_of(openid, now)
    kept = listings.holds_of(openid)
    services = listings.services_by_id([b.service_id for b in booked] + [e.service_id for e in places])
    resources = listings.resources_by_id(b.resource_id for b in booked)
    variants = listings.variants_by_id(h.variant_id for h in kept)
    return {"bookings": [booking_json(b, services[b.service_id], resources.get(b.resource_id), base, now)
                         for b in booked],
            "waitlist": [waitlist_json(e, services[e.service_id]) for e in places],
            "holds": [hold_json(h, variants[h.variant_id], base) for h in kept]}


def _qr(code: str | None) -> Response:
    """The visit code as a QR the counter scans (content: the code itself, e.g. B7KQ…)."""
    if not code:
        raise ApiError(404, "not_found", "this reservation has no visit code")
    response = Response(qr_png_bytes(code), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


BASE = "/api/mp"


# -- services and slots ----------------------------------------------------------------------------

@bp.get("/services")
@authenticated
def service_list(session: mp_sessions.MpSession) -> Response:
    """The services on offer, and the subscribe template to ask consent for before booking."""
    with db.unit_of_work():
        found = [service_json(s) for s in listings.active_services()]
    template = settings().RESERVATION_SUBSCRIBE_TEMPLATE_ID
    return jsonify(services=found, subscribe_template_ids=[template] if template else [])


@bp.get("/services/<int:service_id>/slots")
@authenticated
def service_slots(session: mp_sessions.MpSession, service_id: int) -> Response:
    """The start times of a store day that can be booked now, with what is free at each."""
    raw = request.args.get("day")
    try:
        day = parse_day(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "day must be a store day as YYYY-MM-DD", field="day") from None
    today = slots.store_day(utcnow())
    if abs((day - today).days) > MAX_DAYS_FROM_TODAY:
        raise ApiError(400, "bad_request", f"day must be within {MAX_DAYS_FROM_TODAY} days of today", field="day")
    with db.unit_of_work():
        service = bookings.get_service(_id(service_id, "service"))
        found = bookings.availability(service.id, day)
        return jsonify(service=service_json(service), day=day.isoformat(), slots=[slot_json(v) for v in found])


# -- bookings --------------------------------------------------------------------------------------

@bp.post("/bookings")
@authenticated
def book(session: mp_sessions.MpSession) -> tuple[Response, int]:
    """Book one start time. 201 with the booking; the same Idempotency-Key again: 200 with it."""
    key = idempotency_key()
    body = _parsed(BookRequest)
    now = utcnow()
    with db.unit_of_work():
        made = bookings.book(body.service_id, body.starts_at, session.openid, key, resource_id=body.resource_id,
                             member_id=_member_id(session), channel="mp", now=now)
        status = _created_or_replayed(made.created_at, now)
        if status == 200 and (made.service_id, made.starts_at) != (body.service_id, body.starts_at):
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for another booking; make a new key for a new tap")
        return jsonify(booking=one_booking(made, BASE, now)), status


@bp.get("/bookings")
@authenticated
def my_reservations(session: mp_sessions.MpSession) -> Response:
    """The shopper's upcoming bookings, waiting-list places and goods holds."""
    with db.unit_of_work():
        return jsonify(mine(session.openid, BASE, utcnow()))


@bp.get("/bookings/<int:booking_id>")
@authenticated
def booking_detail(session: mp_sessions.MpSession, booking_id: int) -> Response:
    with db.unit_of_work():
        found = bookings.own(_id(booking_id, "booking"), session.openid)
        return jsonify(booking=one_booking(found, BASE, utcnow()))


@bp.post("/bookings/<int:booking_id>/cancel")
@authenticated
def cancel_booking(session: mp_sessions.MpSession, booking_id: int) -> Response:
    """Cancel before the cut-off (409 too_late inside it); the place goes to the waiting list."""
    body = _body(CancelRequest)
    now = utcnow()
    with db.unit_of_work():
        done = bookings.cancel(_id(booking_id, "booking"), body.reason, openid=session.openid, now=now)
        return jsonify(booking=one_booking(done, BASE, now))


@bp.post("/bookings/<int:booking_id>/reschedule")
@authenticated
def reschedule_booking(session: mp_sessions.MpSession, booking_id: int) -> tuple[Response, int]:
    """Move to another start time: the new one is booked first (the old stands if it is full)."""
    key = idempotency_key()
    body = _parsed(RescheduleRequest)
    now = utcnow()
    with db.unit_of_work():
        new = bookings.reschedule(_id(booking_id, "booking"), body.starts_at, key, openid=session.openid, now=now)
        return jsonify(booking=one_booking(new, BASE, now)), _created_or_replayed(new.created_at, now)


@bp.get("/bookings/<int:booking_id>/qr.png")
@authenticated
def booking_qr(session: mp_sessions.MpSession, booking_id: int) -> Response:
    with db.unit_of_work():
        code = bookings.own(_id(booking_id, "booking"), session.openid).visit_code
    return _qr(code)


# -- the waiting list ------------------------------------------------------------------------------

@bp.post("/waitlist")
@authenticated
def join_waitlist(session: mp_sessions.MpSession) -> tuple[Response, int]:
    """Wait for a full start time; joining again answers the same place (200)."""
    body = _parsed(WaitlistRequest)
    now = utcnow()
    with db.unit_of_work():
        entry = bookings.join_waitlist(body.service_id, body.starts_at, session.openid,
                                       member_id=_member_id(session), now=now)
        service = db.session.get(Service, entry.service_id)
        return jsonify(place=waitlist_json(entry, service)), _created_or_replayed(entry.created_at, now)


@bp.delete("/waitlist/<int:entry_id>")
@authenticated
def leave_waitlist(session: mp_sessions.MpSession, entry_id: int) -> Response:
    """Leave the list; a place offered to the shopper passes on at once."""
    with db.unit_of_work():
        entry = waitlist.leave(_id(entry_id, "waiting-list place"), session.openid)
        return jsonify(place=waitlist_json(entry, db.session.get(Service, entry.service_id)))


@bp.post("/waitlist/<int:entry_id>/accept")
@authenticated
def accept_offer(session: mp_sessions.MpSession, entry_id: int) -> tuple[Response, int]:
    """Take the place the waiting list kept for the shopper: a booking (201; a retry 200)."""
    key = idempotency_key()
    now = utcnow()
    with db.unit_of_work():
        made = bookings.take_offer(_id(entry_id, "waiting-list place"), session.openid, key, now=now)
        return jsonify(booking=one_booking(made, BASE, now)), _created_or_replayed(made.created_at, now)


# -- goods holds -----------------------------------------------------------------------------------

def _filter_arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if len(value) > 64 or "\x00" in value:
        raise ApiError(400, "bad_request", f"{name} is at most 64 characters", field=name)
    return value


@bp.get("/goods")
@authenticated
def goods(session: mp_sessions.MpSession) -> Response:
    """Goods that can be held for a try-on (?counter=, ?brand=), with how many are left."""
    counter, brand = _filter_arg("counter"), _filter_arg("brand")
    with db.unit_of_work():
        return jsonify(goods=[goods_json(v) for v in listings.holdable_goods(counter, brand)])


@bp.post("/holds")
@authenticated
def hold(session: mp_sessions.MpSession) -> tuple[Response, int]:
    """Hold one unit for the visit day (201; the same key again 200; 409 sold_out when none left)."""
    key = idempotency_key()
    body = _parsed(HoldRequest)
    now = utcnow()
    with db.unit_of_work():
        try:
            made = holds.hold(body.variant_id, session.openid, key, body.visit_day, member_id=_member_id(session),
                              now=now)
        except SoldOut as exc:
            raise ApiError(409, "sold_out", str(exc)) from None
        status = _created_or_replayed(made.created_at, now)
        if status == 200 and (made.variant_id, made.visit_day) != (body.variant_id, body.visit_day):
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for another hold; make a new key for a new tap")
        return jsonify(hold=hold_json(made, db.session.get(HoldableVariant, made.variant_id), BASE)), status


@bp.post("/holds/<int:hold_id>/cancel")
@authenticated
def cancel_hold(session: mp_sessions.MpSession, hold_id: int) -> Response:
    now = utcnow()
    with db.unit_of_work():
        done = holds.move(_id(hold_id, "hold"), CANCELLED, openid=session.openid, now=now)
        return jsonify(hold=hold_json(done, db.session.get(HoldableVariant, done.variant_id), BASE))


@bp.get("/holds/<int:hold_id>/qr.png")
@authenticated
def hold_qr(session: mp_sessions.MpSession, hold_id: int) -> Response:
    with db.unit_of_work():
        code = holds.own(_id(hold_id, "hold"), session.openid).visit_code
    return _qr(code)


# -- subscribe-message consents --------------------------------------------------------------------

@bp.post("/subscribe-consents")
@authenticated
def subscribe_consents(session: mp_sessions.MpSession) -> Response:
    """Record the one-time consents wx.requestSubscribeMessage reported: one message each."""
    body = _body(ConsentRequest)
    template = settings().RESERVATION_SUBSCRIBE_TEMPLATE_ID
    with db.unit_of_work():
        recorded = consents.record_grants(session.openid, body.accepted, body.source or "mp")
        remaining = consents.remaining(session.openid, template) if template else 0
    return jsonify(recorded=recorded, remaining=remaining)
