"""The counter's reservation console (/console/reservations): the day and week boards, check-in
(by button or by scanning the shopper's visit-code QR), confirming bookings that wait for the
counter, holds visited, the counter's holdable goods (quantities, CSV import), and the live stream
that tells an open board to re-read itself.

A thin edge over reservations: each call finds the staff member's counters
(`members.staff.counters_of`: None for an admin = every counter), runs one domain verb or read with
`counters=` and `staff_id=` in one unit of work committed here, and shapes HTML or JSON; the verb
records its own audit entry (reservations' bookings, holds, catalog). Every route needs the
`counter` role (or admin: auth.roles), else 403; a booking or hold of another counter is answered
as none (404), with nothing changed. Every write needs the CSRF header.

Live: the page holds an EventSource on /console/reservations/api/stream?counter=X. Each connection
SUBSCRIBEs to reservations' Redis channel (reservations.events), so a booking made from the
mini-program on another worker reaches every open board; events name only the counter, and the
page re-fetches its board (server-rendered HTML) from the database. See desk_stream.py for why SSE
and how to size the server's threads.
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from redis import Redis

from members.staff import COUNTER, counters_of
from payments import service as payment_service
from reservations import board, bookings, catalog, events, holds, slots
from reservations.exceptions import NotAllowed, ReservationError, UnknownReservation
from reservations.models import Booking, GoodsHold
from reservations.states import CHECKED_IN, CONFIRMED, VISITED
from wx_service.edges.bodies import json_body
from wx_service.edges.console import sse
from wx_service.edges.console.auth import roles
from wx_service.edges.console.bodies import (
    ReservationDecline,
    ReservationScan,
    VariantQuantity,
)
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, redis
from wx_service.ground.validation import BadShape

log = logging.getLogger(__name__)

bp = Blueprint("console_reservations", __name__, url_prefix="/console/reservations", template_folder="templates")

NO_ROLE = "the reservation pages are for counter staff and admins; ask an admin to grant you a role " \
          "(flask staff grant-role USER counter --counter CODE)"
MAX_CSV_BYTES = 1_000_000
HEARTBEAT_SECONDS = 15.0

PAID = ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")


# -- who may see what ------------------------------------------------------------------------------

def _counters() -> frozenset[str] | None:
    """The signed-in staff member's counters; None: every counter. Aborts 403 with no role."""
    counters = counters_of(g.staff.id)
    if counters is not None and not counters:
        _forbid(NO_ROLE)
    return counters


def _forbid(reason: str) -> None:
    if "/api/" in request.path:
        abort(Response(json.dumps({"error": reason}), 403, mimetype="application/json"))
    abort(Response(render_template("console/reservations_forbidden.html", reason=reason), 403))


def _counter(counters: frozenset[str] | None) -> str | None:
    """The counter the page is about: ?counter= (one of the staff member's), else their first."""
    asked = (request.args.get("counter") or "").strip()
    if asked:
        if counters is not None and asked not in counters:
            _forbid(f"counter {asked} is not one of yours ({', '.join(sorted(counters))})")
        return asked
    choices = sorted(counters) if counters is not None else board.counters()
    return choices[0] if choices else None


def _day() -> date:
    raw = request.args.get("date") or ""
    try:
        return date.fromisoformat(raw) if raw else slots.store_day(utcnow())
    except ValueError:
        abort(Response(json.dumps({"error": f"date is YYYY-MM-DD (got {raw[:20]!r})"}), 400,
                       mimetype="application/json"))


def refusal(exc: Exception) -> tuple[Response, int]:
    """A domain refusal as the JSON the page shows: its own words, the status that fits."""
    if isinstance(exc, UnknownReservation):
        return jsonify(error=str(exc)), 404
    if isinstance(exc, BadShape):
        return jsonify(error=str(exc), field=exc.field), 400
    if isinstance(exc, ReservationError):
        return jsonify(error=str(exc)), 409
    return jsonify(error=str(exc)), 400


def reservation_api(view: Callable[..., Any]) -> Callable[..., Any]:
    """The staff member's counters, one unit of work around the call (committed when it returns,
    rolled back on a refusal, so a refused write changes nothing), refusals as JSON."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            with db.unit_of_work():
                return view(_counters(), *args, **kwargs)
        except (ReservationError, BadShape) as exc:
            return refusal(exc)
    return wrapped


def _pages(counters: frozenset[str] | None) -> list[str]:
    return sorted(counters) if counters is not None else board.counters()


def _orders(lines: list[Any]) -> dict[str, str]:
    """out_trade_no -> the order's state, for the lines that led to a payment."""
    states: dict[str, str] = {}
    for line in lines:
        if line.out_trade_no and line.out_trade_no not in states:
            order = payment_service.get_order(line.out_trade_no)
            states[line.out_trade_no] = order.state if order is not None else "unknown"
    return states


def _day_context(counters: frozenset[str] | None, counter: str | None, day: date) -> dict[str, Any]:
    if counter is None:
        return {"counter": None, "counters": _pages(counters), "day": day}
    shown = board.day_board(counter, day)
    lines = [*shown.arrivals, *shown.holds_today]
    return {"counter": counter, "counters": _pages(counters), "day": day, "board": shown, "orders": _orders(lines),
            "paid": PAID, "zone": slots.STORE_ZONE, "prev_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1)}


def _week_context(counters: frozenset[str] | None, counter: str | None, day: date) -> dict[str, Any]:
    first = day - timedelta(days=day.weekday())
    if counter is None:
        return {"counter": None, "counters": _pages(counters), "day": first}
    return {"counter": counter, "counters": _pages(counters), "day": first, "board": board.week_board(counter, first),
            "zone": slots.STORE_ZONE, "today": slots.store_day(utcnow()), "prev_week": first - timedelta(days=7),
            "next_week": first + timedelta(days=7)}


# -- pages ---------------------------------------------------------------------------------------

@bp.get("/")
@roles(COUNTER)
def index():
    _counters()
    return redirect(url_for("console_reservations.day", **request.args))


@bp.get("/day")
@roles(COUNTER)
def day():
    with db.unit_of_work():
        counters = _counters()
        return render_template("console/reservations_day.html",
                               **_day_context(counters, _counter(counters), _day()))


@bp.get("/week")
@roles(COUNTER)
def week():
    with db.unit_of_work():
        counters = _counters()
        return render_template("console/reservations_week.html",
                               **_week_context(counters, _counter(counters), _day()))


@bp.get("/goods")
@roles(COUNTER)
def goods():
    with db.unit_of_work():
        counters = _counters()
        counter = _counter(counters)
        variants = catalog.variants_of(counter) if counter else []
        return render_template("console/reservations_goods.html", counter=counter, counters=_pages(counters),
                               variants=variants, columns=catalog.COLUMNS)


@bp.get("/api/board")
@roles(COUNTER)
def board_fragment():
    """The day's (or, with view=week, the week's) board alone: what a live page swaps in."""
    with db.unit_of_work():
        counters = _counters()
        counter = _counter(counters)
        if request.args.get("view") == "week":
            return render_template("console/reservations_week_board.html",
                                   **_week_context(counters, counter, _day()))
        return render_template("console/reservations_board.html", **_day_context(counters, counter, _day()))


# -- bookings and holds --------------------------------------------------------------------------

def _scan_answer(found: dict[str, Any], already: bool) -> dict[str, Any]:
    payable = found["status"] in (CHECKED_IN, VISITED)
    return {**found, "already": already,
            "pay_url": url_for("console_counter.index", counter=found["counter"], reservation=found["code"])
            if payable else None}


@bp.post("/api/scan")
@roles(COUNTER)
@reservation_api
def scan(counters: frozenset[str] | None):
    """The scanner typed a visit code: check the booking in / mark the hold visited. A second scan
    of the same code answers the same, with `already` true."""
    code = json_body(ReservationScan).code.strip().upper()
    if code.startswith("B"):
        booking = bookings.by_visit_code(code)
        if booking is None or not _in(counters, board.counter_of_booking(booking)):
            raise UnknownReservation(f"no reservation with code {code} at your counters")
        already = booking.status == CHECKED_IN
        booking = bookings.check_in(booking.id, counters=counters, staff_id=g.staff_id, detail="scan")
        return jsonify(_scan_answer(board.describe_booking(booking), already))
    if code.startswith("H"):
        hold = holds.by_visit_code(code)
        if hold is None or not _in(counters, board.counter_of_hold(hold)):
            raise UnknownReservation(f"no reservation with code {code} at your counters")
        already = hold.status == VISITED
        hold = holds.visit(hold.id, counters=counters, staff_id=g.staff_id, detail="scan")
        return jsonify(_scan_answer(board.describe_hold(hold), already))
    raise UnknownReservation(f"{code[:16]} is not a visit code (they start with B or H)")


def _in(counters: frozenset[str] | None, counter: str) -> bool:
    return counters is None or counter in counters


@bp.post("/api/bookings/<int:booking_id>/check-in")
@roles(COUNTER)
@reservation_api
def check_in(counters: frozenset[str] | None, booking_id: int):
    booking = bookings.check_in(booking_id, counters=counters, staff_id=g.staff_id)
    return jsonify(board.describe_booking(booking))


@bp.post("/api/bookings/<int:booking_id>/confirm")
@roles(COUNTER)
@reservation_api
def confirm(counters: frozenset[str] | None, booking_id: int):
    booking = bookings.confirm(booking_id, counters=counters, staff_id=g.staff_id)
    return jsonify(board.describe_booking(booking))


@bp.post("/api/bookings/<int:booking_id>/decline")
@roles(COUNTER)
@reservation_api
def decline(counters: frozenset[str] | None, booking_id: int):
    reason = json_body(ReservationDecline).reason
    booking = bookings.decline(booking_id, reason, counters=counters, staff_id=g.staff_id)
    return jsonify(board.describe_booking(booking))


@bp.post("/api/holds/<int:hold_id>/visited")
@roles(COUNTER)
@reservation_api
def visited(counters: frozenset[str] | None, hold_id: int):
    hold = holds.visit(hold_id, counters=counters, staff_id=g.staff_id)
    return jsonify(board.describe_hold(hold))


@bp.post("/api/holds/<int:hold_id>/confirm")
@roles(COUNTER)
@reservation_api
def confirm_hold(counters: frozenset[str] | None, hold_id: int):
    hold = holds.move(hold_id, CONFIRMED, counters=counters, staff_id=g.staff_id)
    return jsonify(board.describe_hold(hold))


# -- goods ---------------------------------------------------------------------------------------

@bp.post("/api/variants/<int:variant_id>")
@roles(COUNTER)
@reservation_api
def set_quantity(counters: frozenset[str] | None, variant_id: int):
    holdable = json_body(VariantQuantity).holdable
    variant = catalog.set_holdable(variant_id, holdable, counters=counters, staff_id=g.staff_id)
    return jsonify(id=variant.id, holdable=variant.holdable, held=variant.held)


@bp.post("/api/variants/import")
@roles(COUNTER)
@reservation_api
def import_csv(counters: frozenset[str] | None):
    """A CSV upload (form field `file`): all rows applied, or none and the bad lines named (422)."""
    upload = request.files.get("file")
    if upload is None:
        return jsonify(error="choose a CSV file to upload (form field `file`)"), 400
    raw = upload.stream.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        return jsonify(error=f"the file is larger than {MAX_CSV_BYTES // 1000} kB; split it"), 413
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return jsonify(error="the file is not UTF-8 text; save it as CSV UTF-8"), 400
    result = catalog.import_variants(text, counters=counters, staff_id=g.staff_id, detail=(upload.filename or "")[:200])
    body = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
            "errors": result.errors}
    if result.errors:
        return jsonify(error=f"nothing imported: {len(result.errors)} bad row(s)", **body), 422
    return jsonify(body)


# -- paying at the counter after the visit (used by counter.py) ----------------------------------

def reservation_for_payment(code: str, counters: frozenset[str] | None) -> Booking | GoodsHold:
    """The checked-in booking or visited hold a till takes payment for. Flushes nothing.
    UnknownReservation when there is none at the staff member's counters; NotAllowed when the
    shopper has not been checked in yet or has paid already."""
    code = code.strip().upper()
    found: Booking | GoodsHold | None
    if code.startswith("B"):
        found = bookings.by_visit_code(code)
        counter = board.counter_of_booking(found) if found is not None else ""
    else:
        found = holds.by_visit_code(code)
        counter = board.counter_of_hold(found) if found is not None else ""
    if found is None or not _in(counters, counter):
        raise UnknownReservation(f"no reservation with code {code[:16]} at your counters")
    if found.status not in (CHECKED_IN, VISITED):
        raise NotAllowed(f"reservation {code} is {found.status}: check the shopper in before taking payment")
    if found.out_trade_no:
        order = payment_service.get_order(found.out_trade_no)
        if order is not None and order.state in PAID:
            raise NotAllowed(f"reservation {code} is paid already (order {found.out_trade_no})")
    return found


def describe_for_payment(found: Booking | GoodsHold) -> dict[str, Any]:
    return board.describe_booking(found) if isinstance(found, Booking) else board.describe_hold(found)


def link_payment(code: str, out_trade_no: str) -> None:
    """The reservation now carries the order opened for it (in the caller's unit of work)."""
    found = bookings.by_visit_code(code) if code.strip().upper().startswith("B") else holds.by_visit_code(code)
    if isinstance(found, Booking):
        bookings.link_payment(found.id, out_trade_no)
    elif isinstance(found, GoodsHold):
        holds.link_payment(found.id, out_trade_no)


# -- live ----------------------------------------------------------------------------------------

def stream_events(client: Redis, channel: str, counter: str, heartbeat: float | None = None) -> Iterator[str]:
    """The counter's events, relayed as `event: reservations` (see sse.relay)."""
    return sse.relay(client, channel, "reservations", {"counter": counter},
                     lambda event: event.get("counter") == counter, lambda: heartbeat or HEARTBEAT_SECONDS)


@bp.get("/api/stream")
@roles(COUNTER)
def stream():
    with db.unit_of_work():
        counter = _counter(_counters())
    if counter is None:
        return jsonify(error="no counter to follow"), 404
    db.session.remove()  # hold no database connection while the stream is open
    return sse.response(stream_events(redis(), events.channel(), counter))
