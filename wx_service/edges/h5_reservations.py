"""The OA's reservation pages (H5 inside WeChat's browser, issue 11): the services, a day's slots
with a book button (or a join-the-waiting-list button on a full slot), the goods a shopper can hold
for a try-on (a visit day and a hold button per size/colour), and "my reservations" with the visit
QR and cancel. Server-rendered forms, no script needed, no CDN.

Who the shopper is comes from the OA web authorization in h5.py (the openid kept in the signed
session); a page opened without it goes through /h5/oauth/start and comes back. Every POST carries
the session's CSRF token (the same one the pay page uses) in a hidden field, and a booking form
and a hold form carry an idempotency key made when the page was drawn, so a double tap books (or
holds) once. After a write
the browser is redirected (POST/redirect/GET), so a reload does not post again. Bookings made here
use channel "h5": their notices reach the shopper by the OA template message.

The data is shaped once, by the mini-program API's helpers (mp_reservations), so the two sides
show the same things.
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from members.identity import OA, member_for_openid
from reservations import bookings, holds, listings, slots, waitlist
from reservations.exceptions import ReservationError, SoldOut
from reservations.models import HoldableVariant, Service
from reservations.states import CANCELLED
from wx_service.edges import h5
from wx_service.edges.api import mp_reservations as shapes
from wx_service.edges.api.mp_bodies import MAX_ID, parse_day, parse_zoned_time
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.logs import mask_openid
from wx_service.ground.qr_images import qr_png_bytes

bp = Blueprint("h5_reservations", __name__, url_prefix="/h5/reservations", template_folder="templates")
log = logging.getLogger(__name__)

BASE = "/h5/reservations"
DAYS_SHOWN = 7
_KEY = re.compile(r"[A-Za-z0-9_\-]{8,64}")
# What the "my reservations" page says after a write (fixed texts: nothing from the query is echoed).
DONE = {"booked": "预约成功 · Booked", "waitlisted": "已加入候补 · On the waiting list",
        "cancelled": "已取消预约 · Cancelled", "left": "已退出候补 · Left the waiting list",
        "accepted": "候补成功，已为您预约 · Booked from the waiting list", "hold_cancelled": "已取消保留 · Hold cancelled",
        "held": "保留成功 · Held for your visit"}
WEEKDAYS = "一二三四五六日"


# -- plumbing --------------------------------------------------------------------------------------

bp.after_request(h5.no_store)


@bp.app_template_filter("rsv_clock")
def rsv_clock(value: str | None) -> str:
    """2026-12-05T14:00:00+08:00 -> 12月05日 14:00 (the store's clock, as the API gave it)."""
    if not value:
        return ""
    at = datetime.fromisoformat(value).astimezone(slots.STORE_ZONE)
    return at.strftime("%m月%d日 %H:%M")


def _form_id(name: str) -> int:
    raw = request.form.get(name, "")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise h5.Refused(400, f"{name} is missing or not a number")
    return int(raw)


def _form_time(name: str = "starts_at") -> datetime:
    try:
        return parse_zoned_time(request.form.get(name))
    except ValueError as exc:
        raise h5.Refused(400, f"{name} {exc}") from None


def _form_key() -> str:
    key = request.form.get("key", "")
    if not _KEY.fullmatch(key):
        raise h5.Refused(400, "this form has no valid request key; reload the page")
    return key


def _member_id(openid: str) -> int | None:
    member = member_for_openid(OA, openid)
    return member.id if member is not None else None


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("h5/res_error.html", message=message, back=url_for("h5_reservations.services")), status


@bp.errorhandler(h5.Refused)
def _refused(exc: h5.Refused) -> tuple[str, int] | Response:
    if exc.status == 401:
        return redirect(url_for("h5.oauth_start", next=BASE + "/mine"), code=302)
    return _error_page(exc.status, exc.message)


@bp.errorhandler(ReservationError)
def _domain_refused(exc: ReservationError) -> tuple[str, int]:
    status = next((s for k, (s, _code) in shapes.REFUSALS.items() if isinstance(exc, k)), 409)
    return _error_page(status, str(exc))


@bp.errorhandler(Exception)
def _any_error(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, HTTPException):
        return _error_page(exc.code or 500, exc.description or exc.name)
    log.exception("h5 reservations page failure")
    return _error_page(500, "出错了，请稍后再试 · Something went wrong on our side; try again in a moment.")


# -- pages -----------------------------------------------------------------------------------------

@bp.get("")
def services() -> Response | str:
    """The services on offer, each a link to its slots."""
    if h5.signed_in_openid() is None:
        return h5.sign_in()
    with db.unit_of_work():
        found = [shapes.service_json(s) for s in listings.active_services()]
    return render_template("h5/res_services.html", services=found)


def _day_arg(service: Service, today: date) -> date:
    raw = request.args.get("day")
    if raw is None or raw == "":
        return today
    try:
        day = parse_day(raw)
    except ValueError:
        raise h5.Refused(400, "day must be a date as YYYY-MM-DD") from None
    if not today <= day <= today + timedelta(days=service.horizon_days):
        raise h5.Refused(400, f"{service.name} can be booked from today to {service.horizon_days} days ahead")
    return day


def _slots_page(service_id: int, day_arg: date | None = None, message: str = "", status: int = 200
                ) -> tuple[str, int]:
    """The day's slots of a service, each with its own form (its own idempotency key)."""
    now = utcnow()
    today = slots.store_day(now)
    with db.unit_of_work():
        if service_id > MAX_ID:
            raise h5.Refused(404, f"no service {service_id}")
        service = bookings.get_service(service_id)
        day = day_arg or _day_arg(service, today)
        found = [shapes.slot_json(v) | {"key": secrets.token_urlsafe(16)} for v in bookings.availability(service.id, day, now)]
        shown = shapes.service_json(service)
    days = [today + timedelta(days=n) for n in range(min(DAYS_SHOWN, shown["horizon_days"] + 1))]
    return render_template("h5/res_slots.html", service=shown, day=day.isoformat(), days=[d.isoformat() for d in days],
                           slots=found, csrf=h5.csrf_token(), message=message), status


@bp.get("/services/<int:service_id>")
def service_slots(service_id: int) -> Response | tuple[str, int]:
    if h5.signed_in_openid() is None:
        return h5.sign_in()
    return _slots_page(service_id)


@bp.post("/book")
def book() -> Response | tuple[str, int]:
    """Book the slot of the form; a refusal (full, limit, bad time) redraws the day with why."""
    openid = h5.form_openid()
    service_id, starts_at, key = _form_id("service_id"), _form_time(), _form_key()
    try:
        with db.unit_of_work():
            made = bookings.book(service_id, starts_at, openid, key, member_id=_member_id(openid), channel="h5")
            booking_id = made.id
    except SoldOut as exc:
        return _slots_page(service_id, slots.store_day(starts_at), f"{exc}", 409)
    except ReservationError as exc:
        status = next((s for k, (s, _c) in shapes.REFUSALS.items() if isinstance(exc, k)), 409)
        if status == 404:
            raise
        return _slots_page(service_id, _shown_day(starts_at), str(exc), status)
    log.info("h5 booking %s", booking_id, extra={"openid": mask_openid(openid)})
    return redirect(url_for("h5_reservations.mine", done="booked", _anchor=f"booking-{booking_id}"), code=303)


def _shown_day(starts_at: datetime) -> date | None:
    """The day to redraw after a refusal: the slot's, if it is one the page can show."""
    day = slots.store_day(starts_at)
    today = slots.store_day(utcnow())
    return day if today <= day <= today + timedelta(days=400) else today


@bp.post("/waitlist")
def join_waitlist() -> Response | tuple[str, int]:
    openid = h5.form_openid()
    service_id, starts_at = _form_id("service_id"), _form_time()
    with db.unit_of_work():
        entry = bookings.join_waitlist(service_id, starts_at, openid, member_id=_member_id(openid))
        entry_id = entry.id
    return redirect(url_for("h5_reservations.mine", done="waitlisted", _anchor=f"place-{entry_id}"), code=303)


# -- goods holds -----------------------------------------------------------------------------------

def _goods_groups(variants: list[HoldableVariant]) -> list[dict[str, Any]]:
    """[{counter, brands: [{brand, variants: [goods_json + its form's key]}]}], in the listing's order
    (counter, brand, product, variant): each item's form gets its own idempotency key."""
    groups = []
    for counter, of_counter in groupby(variants, key=lambda v: v.counter_code):
        brands = [{"brand": brand, "variants": [shapes.goods_json(v) | {"key": secrets.token_urlsafe(16)} for v in items]}
                  for brand, items in groupby(of_counter, key=lambda v: v.brand)]
        groups.append({"counter": counter, "brands": brands})
    return groups


def _visit_days(today: date) -> list[dict[str, str]]:
    """Today and the next holds.MAX_DAYS_AHEAD store days, as the day picker's options."""
    days = (today + timedelta(days=n) for n in range(holds.MAX_DAYS_AHEAD + 1))
    return [{"value": d.isoformat(), "label": f"{d:%m-%d} 周{WEEKDAYS[d.weekday()]}" + (" 今天" if d == today else "")}
            for d in days]


def _goods_page(message: str = "", status: int = 200, chosen_day: str = "") -> tuple[str, int]:
    """The holdable goods by counter and brand, with how many are free and a hold form each."""
    today = slots.store_day(utcnow())
    with db.unit_of_work():
        groups = _goods_groups(listings.holdable_goods())
    days = _visit_days(today)
    chosen = chosen_day if any(d["value"] == chosen_day for d in days) else days[0]["value"]
    return render_template("h5/res_goods.html", groups=groups, days=days, chosen_day=chosen, csrf=h5.csrf_token(),
                           message=message), status


@bp.get("/goods")
def goods() -> Response | tuple[str, int]:
    if h5.signed_in_openid() is None:
        return h5.sign_in()
    return _goods_page()


def _form_day(name: str = "visit_day") -> date:
    try:
        return parse_day(request.form.get(name))
    except ValueError as exc:
        raise h5.Refused(400, f"{name} {exc}") from None


@bp.post("/hold")
def hold() -> Response | tuple[str, int]:
    """Hold one unit for the chosen visit day; a refusal (none left, a day out of range, an
    unknown item) redraws the goods with why, and changes nothing."""
    openid = h5.form_openid()
    variant_id, key, visit_day = _form_id("variant_id"), _form_key(), _form_day()
    try:
        with db.unit_of_work():
            made = holds.hold(variant_id, openid, key, visit_day, member_id=_member_id(openid))
            hold_id, first = made.id, (made.variant_id, made.visit_day)
            if first != (variant_id, visit_day):
                raise h5.Refused(422, "这个表单已经用过了，请刷新页面 · This form was already used; reload the page.")
    except h5.Refused as exc:
        return _goods_page(exc.message, exc.status)
    except ReservationError as exc:
        status = next((s for k, (s, _c) in shapes.REFUSALS.items() if isinstance(exc, k)), 409)
        return _goods_page(str(exc), status, visit_day.isoformat())
    log.info("h5 hold %s", hold_id, extra={"openid": mask_openid(openid)})
    return redirect(url_for("h5_reservations.mine", done="held", _anchor=f"hold-{hold_id}"), code=303)


@bp.get("/mine")
def mine() -> Response | str:
    """My bookings (with the visit QR and cancel), waiting-list places and holds."""
    openid = h5.signed_in_openid()
    if openid is None:
        return h5.sign_in()
    with db.unit_of_work():
        found = shapes.mine(openid, BASE, utcnow())
    for place in found["waitlist"]:
        place["key"] = secrets.token_urlsafe(16)  # taking an offer books once, however often it is tapped
    done = DONE.get(request.args.get("done", ""), "")
    return render_template("h5/res_mine.html", mine=found, done=done, csrf=h5.csrf_token())


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel(booking_id: int) -> Response:
    openid = h5.form_openid()
    reason = request.form.get("reason", "").strip()
    if len(reason) > 200 or "\x00" in reason:
        raise h5.Refused(400, "the reason is at most 200 characters")
    with db.unit_of_work():
        bookings.cancel(_path_id(booking_id, "booking"), reason, openid=openid)
    return redirect(url_for("h5_reservations.mine", done="cancelled"), code=303)


@bp.post("/waitlist/<int:entry_id>/leave")
def leave(entry_id: int) -> Response:
    openid = h5.form_openid()
    with db.unit_of_work():
        waitlist.leave(_path_id(entry_id, "waiting-list place"), openid)
    return redirect(url_for("h5_reservations.mine", done="left"), code=303)


@bp.post("/waitlist/<int:entry_id>/accept")
def accept(entry_id: int) -> Response:
    openid = h5.form_openid()
    key = _form_key()
    with db.unit_of_work():
        made = bookings.take_offer(_path_id(entry_id, "waiting-list place"), openid, key)
        booking_id = made.id
    return redirect(url_for("h5_reservations.mine", done="accepted", _anchor=f"booking-{booking_id}"), code=303)


@bp.post("/holds/<int:hold_id>/cancel")
def cancel_hold(hold_id: int) -> Response:
    openid = h5.form_openid()
    with db.unit_of_work():
        holds.move(_path_id(hold_id, "hold"), CANCELLED, openid=openid)
    return redirect(url_for("h5_reservations.mine", done="hold_cancelled"), code=303)


def _path_id(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise h5.Refused(404, f"no {what} {value}")
    return value


def _png(code: str | None) -> Response:
    if not code:
        raise h5.Refused(404, "this reservation has no visit code")
    return Response(qr_png_bytes(code), mimetype="image/png")


@bp.get("/bookings/<int:booking_id>/qr.png")
def booking_qr(booking_id: int) -> Response:
    """The visit QR, for the booking's own shopper only."""
    openid = h5.signed_in_openid()
    if openid is None:
        raise h5.Refused(403, "sign in first")
    with db.unit_of_work():
        code = bookings.own(_path_id(booking_id, "booking"), openid).visit_code
    return _png(code)


@bp.get("/holds/<int:hold_id>/qr.png")
def hold_qr(hold_id: int) -> Response:
    openid = h5.signed_in_openid()
    if openid is None:
        raise h5.Refused(403, "sign in first")
    with db.unit_of_work():
        code = holds.own(_path_id(hold_id, "hold"), openid).visit_code
    return _png(code)
