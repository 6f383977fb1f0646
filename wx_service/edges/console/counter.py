"""The counter page (/console/counter/): staff type an amount, the shopper scans the QR and pays.

Thin edge over payments.counter: parse, call, shape JSON. The page polls
/console/counter/api/orders/<out_trade_no> every ~1.5 s and turns to 已支付 by itself. The counter id
comes from ?counter=… (or the form) and is remembered in the session, so a till opened once as
"1F-cosmetics" stays that counter. Counter staff and cashiers (auth.roles); every write needs the CSRF header.

Paying after a reservation's visit: the reservation console links here with ?reservation=<visit
code>; the page shows who and what, and sends the code with the order. The order is opened with
source `reservation:<code>` and, once it exists, the reservation carries its out_trade_no. Only
staff of the reservation's counter (or an admin) may, and only once the shopper is checked in.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request, session

from members.staff import CASHIER, COUNTER, counters_of
from payments import counter as flow
from payments.config import PaymentsOff
from reservations.exceptions import ReservationError
from wx_service.edges.bodies import json_body
from wx_service.edges.console import reservations
from wx_service.edges.console.auth import roles
from wx_service.edges.console.bodies import NativeOrderRequest
from wx_service.ground.extensions import db
from wx_service.ground.qr_images import qr_png_bytes
from wx_service.ground.validation import BadShape

bp = Blueprint("console_counter", __name__, url_prefix="/console/counter", template_folder="templates")


def _refusal(exc: flow.CounterError) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": exc.message}
    out_trade_no = getattr(exc, "out_trade_no", None)
    if out_trade_no:
        body["out_trade_no"] = out_trade_no
        try:
            body["order"] = flow.order_view(out_trade_no)
        except flow.UnknownOrder:
            pass
    return jsonify(body), exc.status


def _payments_off(exc: PaymentsOff) -> tuple[Response, int]:
    return jsonify(error=f"WeChat Pay is not configured here: {exc}"), 503


def _current_counter() -> str | None:
    """?counter= (validated, then remembered in the session), else the remembered one."""
    asked = request.args.get("counter")
    if asked is not None:
        try:
            session["counter"] = flow.check_counter(asked)
        except flow.CounterError:
            return None
    return session.get("counter")


@bp.get("/")
@roles(CASHIER, COUNTER)
def index():
    counter = _current_counter()
    bad = request.args.get("counter") is not None and counter != request.args.get("counter", "").strip()
    reservation, reservation_error = None, ""
    if request.args.get("reservation"):
        with db.unit_of_work():  # reads only; a refusal is shown, not raised (a rollback would expire g.staff)
            try:
                found = reservations.reservation_for_payment(request.args["reservation"][:64], counters_of(g.staff.id))
                reservation = reservations.describe_for_payment(found)
            except ReservationError as exc:
                reservation_error = str(exc)
    return render_template("console/counter.html", counter=counter,
                           counter_error="counter is 1-32 letters, digits, '_' or '-'" if bad else "",
                           reservation=reservation, reservation_error=reservation_error)


@bp.get("/api/orders")
@roles(CASHIER, COUNTER)
def recent():
    counter = request.args.get("counter") or session.get("counter")
    if not counter:
        return jsonify(error="choose a counter first (?counter=1F-cosmetics)"), 400
    try:
        return jsonify(counter=counter, orders=flow.recent_orders(counter))
    except flow.CounterError as exc:
        return _refusal(exc)


@bp.post("/api/orders")
@roles(CASHIER, COUNTER)
def create():
    try:
        body = json_body(NativeOrderRequest)
    except BadShape as exc:
        return jsonify(error=str(exc), field=exc.field), 400
    code = None
    if body.reservation:
        try:
            with db.unit_of_work():
                code = reservations.reservation_for_payment(body.reservation, counters_of(g.staff.id)).visit_code
        except ReservationError as exc:
            return reservations.refusal(exc)
    try:
        counter = flow.check_counter(body.counter or session.get("counter") or "")
        amount_fen = flow.parse_yuan(body.amount)
        order = flow.open_native_order(amount_fen, counter, g.staff.id, body.description,
                                       source=f"reservation:{code}" if code else "")
    except flow.CounterError as exc:
        return _refusal(exc)
    except PaymentsOff as exc:
        return _payments_off(exc)
    session["counter"] = counter
    if code:
        with db.unit_of_work():
            reservations.link_payment(code, order.out_trade_no)
    return jsonify(order=flow.order_view(order.out_trade_no), reservation=code), 201


@bp.get("/api/orders/<out_trade_no>")
@roles(CASHIER, COUNTER)
def show(out_trade_no: str):
    try:
        return jsonify(order=flow.order_view(out_trade_no))
    except flow.CounterError as exc:
        return _refusal(exc)


@bp.post("/api/orders/<out_trade_no>/cancel")
@roles(CASHIER, COUNTER)
def cancel(out_trade_no: str):
    try:
        return jsonify(order=flow.cancel(out_trade_no, staff_id=g.staff.id))
    except flow.CounterError as exc:
        return _refusal(exc)
    except PaymentsOff as exc:
        return _payments_off(exc)


@bp.get("/api/orders/<out_trade_no>/qr.png")
@roles(CASHIER, COUNTER)
def qr(out_trade_no: str):
    """The code_url as a PNG, while the order can still be paid (staff only: it is a live charge)."""
    try:
        order = flow.order_view(out_trade_no)
    except flow.CounterError as exc:
        return _refusal(exc)
    if not order["code_url"]:
        return jsonify(error="this order has no payable QR code"), 404
    response = Response(qr_png_bytes(order["code_url"]), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response
