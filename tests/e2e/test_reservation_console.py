"""The counter's reservation console over real HTTP (issue 11): who may see and change what (admin,
the counter's staff, another counter's staff, staff with no role), check-in by the visit code on the
shopper's QR, confirming and declining bookings that wait for the counter, goods imported from a
CSV (all rows or none, idempotent, never below what is held), paying at the counter after the
visit through the emulator's WeChat Pay, and the desk's side panel showing the reservations."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from members import staff as staff_service
from payments.models import Order
from reservations import bookings, events, holds, slots
from reservations.models import Booking, GoodsHold, HoldableVariant, Service
from reservations.states import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    REQUESTED,
    VISITED,
)
from service_desk import panel
from service_desk.models import ASSIGNED
from tests.e2e.desk_helpers import Console, make_plain_staff, sign_in
from tests.integration.desk_read_helpers import agent, conv
from tests.integration.members_helpers import make_member
from tests.integration.reservation_helpers import held, on_grid, uow, variant
from tests.integration.reservation_helpers import service as make_service
from tests.integration.test_counter import control, eventually
from tests.integration.test_service_desk import make_agent, make_team
from wx_service.ground.db import utcnow

X, Y = "LANCOME", "DIOR"
SHOPPER = "oShopperReserve000000000001"
ROLES = {"admin": ("admin", ""), "staff_x": ("counter", X), "staff_y": ("counter", Y), "nobody": None}


# -- helpers (the Chromium test uses them too) --------------------------------------------------

def staff(app, username: str, role: str | None = None, counter: str = "") -> None:
    """Staff who can sign in, with a reservation role (or none)."""
    make_plain_staff(app, username)
    if role:
        with uow(app):
            staff_service.grant_role(username, role, counter)


def today():
    return slots.store_day(utcnow())


def book_today(app, service_id: int, openid: str = SHOPPER, key: str = "tap-1", *, resource_id: int | None = None,
               nth: int = 0, member_id: int | None = None) -> Booking:
    """A booking at the `nth` start time of today (store time), made as if booked yesterday evening,
    so that it is today's whatever the hour the test runs at."""
    with uow(app) as session:
        made = session.get(Service, service_id)
        day = today()
        start = slots.starts_between(made, day, day, slots.hours_for(made.counter_code, [day]))[nth]
        booking = bookings.book(service_id, start, openid, key, resource_id=resource_id, member_id=member_id,
                                now=slots.store_midnight(day) - timedelta(hours=2))
        session.expunge(booking)
        return booking


def booking_row(app, booking_id: int) -> Booking:
    with uow(app) as session:
        row = session.get(Booking, booking_id)
        session.expunge(row)
        return row


def hold_row(app, hold_id: int) -> GoodsHold:
    with uow(app) as session:
        row = session.get(GoodsHold, hold_id)
        session.expunge(row)
        return row


def hold_today(app, variant_id: int, openid: str = SHOPPER, key: str = "hold-1") -> GoodsHold:
    with uow(app) as session:
        made = holds.hold(variant_id, openid, key, today())
        session.expunge(made)
        return made


def two_counters(app) -> dict[str, int]:
    """Counter X and counter Y, each with a service of two resources and a holdable variant."""
    sx, rx = make_service(app, capacity=2, counter=X, code="facial", resources=2)
    sy, ry = make_service(app, capacity=2, counter=Y, code="fitting", resources=1)
    return {"sx": sx, "rx": rx, "sy": sy, "ry": ry, "vx": variant(app, 3, counter=X), "vy": variant(app, 3, counter=Y)}


def console_as(app, base_url: str, username: str) -> Console:
    spec = ROLES[username]
    staff(app, username, *(spec or (None,)))
    return sign_in(base_url, username)


# -- roles ---------------------------------------------------------------------------------------

# username -> (X's pages, a change to X's booking): admin and X's staff may; Y's staff are told the
# booking does not exist at their counters (404); staff with no role are refused outright (403).
ALLOWED = {"admin": (200, 200), "staff_x": (200, 200), "staff_y": (403, 404), "nobody": (403, 403)}


@pytest.mark.parametrize("username", list(ALLOWED))
def test_roles_decide_who_sees_and_changes_a_counters_reservations(app, base_url, username):
    made = two_counters(app)
    booking = book_today(app, made["sx"])
    hold = hold_today(app, made["vx"])
    console = console_as(app, base_url, username)
    page_status, change_status = ALLOWED[username]

    for path in (f"/console/reservations/day?counter={X}", f"/console/reservations/week?counter={X}",
                 f"/console/reservations/goods?counter={X}", f"/console/reservations/api/board?counter={X}"):
        response = console.get(path)
        assert response.status_code == page_status, (path, response.status_code)
        assert (SHOPPER[:4] in response.text) == (page_status == 200 and "goods" not in path)

    for path in (f"/console/reservations/api/bookings/{booking.id}/check-in",
                 f"/console/reservations/api/holds/{hold.id}/visited"):
        response = console.post(path)
        assert response.status_code == change_status, (path, response.status_code, response.text)
    assert booking_row(app, booking.id).status == (CHECKED_IN if change_status == 200 else BOOKED)
    assert hold_row(app, hold.id).status == (VISITED if change_status == 200 else "held")


def test_staff_of_one_counter_see_theirs_by_default_and_never_the_others_bookings(app, base_url):
    made = two_counters(app)
    mine = book_today(app, made["sy"], openid="oShopperAtDior0000000000001", key="y-1")
    book_today(app, made["sx"], openid="oShopperAtLancome0000000001", key="x-1")
    console = console_as(app, base_url, "staff_y")
    page = console.get("/console/reservations/day")
    assert page.status_code == 200
    assert f'id="arrival-{mine.id}"' in page.text
    assert page.text.count('id="arrival-') == 1
    assert re.search(r'<option value="DIOR" selected', page.text) and 'value="LANCOME"' not in page.text


def test_staff_with_no_role_get_403_on_every_reservation_route(app, base_url):
    console = console_as(app, base_url, "nobody")
    routes = [(re.sub(r"<int:\w+>", "1", rule.rule), method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/console/reservations") for method in rule.methods - {"HEAD", "OPTIONS"}]
    assert len(routes) >= 12
    for path, method in routes:
        response = console.http.request(method, base_url + path, headers={"X-CSRF-Token": console.csrf}, json={},
                                        timeout=5, allow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "grant-role" in response.text


# -- live events ---------------------------------------------------------------------------------

def test_a_commit_tells_each_counter_once_and_a_rollback_tells_nobody(app):
    """What every open board hears: one event per counter per commit (a booking and its reschedule
    are one), nothing for a transaction that rolled back, and no content, only the counter."""
    made = two_counters(app)
    at, later = on_grid(app, made["sx"]), on_grid(app, made["sx"], hours_ahead=48)
    with app.app_context():
        channel = events.channel()
    pubsub = app.extensions["wx"].redis.pubsub()
    pubsub.subscribe(channel)
    try:
        with uow(app):
            first = bookings.book(made["sx"], at, SHOPPER, "k-1")
            bookings.reschedule(first.id, later, "k-2")
            holds.hold(made["vy"], SHOPPER, "k-3", today())
        with pytest.raises(RuntimeError), uow(app):
            bookings.book(made["sx"], at, "oShopperRolledBack00000001", "k-4")
            raise RuntimeError("the request failed after booking")
        with uow(app):
            events.counter_changed("SENTINEL", "booking")  # the last word: everything before it has arrived
        heard = []
        while not heard or heard[-1]["counter"] != "SENTINEL":
            message = pubsub.get_message(timeout=10)
            assert message is not None, f"only heard {heard}"
            if message["type"] == "message":
                heard.append(json.loads(message["data"]))
    finally:
        pubsub.close()
    assert [(e["kind"], e["counter"], e["what"]) for e in heard] == [
        ("reservations", Y, ["hold"]), ("reservations", X, ["booking"]), ("reservations", "SENTINEL", ["booking"])]
    assert SHOPPER not in repr(heard)


# -- check-in by QR ------------------------------------------------------------------------------

def test_scanning_a_visit_code_checks_in_and_a_second_scan_is_harmless(app, base_url):
    made = two_counters(app)
    booking = book_today(app, made["sx"], member_id=make_member(app, name="王女士"))
    console = console_as(app, base_url, "staff_x")

    first = console.post("/console/reservations/api/scan", {"code": " " + booking.visit_code.lower() + "\n"})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["kind"], answer["status"], answer["already"]) == ("booking", CHECKED_IN, False)
    assert answer["shopper"].startswith("王**") and SHOPPER not in answer["shopper"]
    assert "肌肤测试" in answer["what"] and answer["pay_url"].endswith(f"reservation={booking.visit_code}")
    checked_in_at = booking_row(app, booking.id).checked_in_at

    again = console.post("/console/reservations/api/scan", {"code": booking.visit_code})
    assert again.status_code == 200 and again.json()["already"] is True
    assert booking_row(app, booking.id).checked_in_at == checked_in_at

    page = console.get(f"/console/reservations/api/board?counter={X}").text
    arrival = re.search(rf'<tr id="arrival-{booking.id}"[^>]*data-status="(\w+)"', page)
    assert arrival.group(1) == CHECKED_IN


def test_scanning_a_hold_marks_it_visited_once_and_gives_its_unit_back(app, base_url):
    made = two_counters(app)
    hold = hold_today(app, made["vx"])
    assert held(app, made["vx"]) == 1
    console = console_as(app, base_url, "staff_x")
    for already in (False, True):
        response = console.post("/console/reservations/api/scan", {"code": hold.visit_code})
        assert response.status_code == 200, response.text
        assert (response.json()["kind"], response.json()["status"], response.json()["already"]) == (
            "hold", VISITED, already)
    assert held(app, made["vx"]) == 0  # the unit is in the shopper's hands now, not on hold


def test_codes_of_another_counter_unknown_codes_and_other_days_are_refused_and_change_nothing(app, base_url):
    made = two_counters(app)
    theirs = book_today(app, made["sy"], key="y")
    tomorrow = on_grid(app, made["sx"], hours_ahead=30)
    with uow(app) as session:
        later = bookings.book(made["sx"], tomorrow, "oShopperTomorrow00000000001", "t-1")
        session.expunge(later)
    console = console_as(app, base_url, "staff_x")
    refused = console.post("/console/reservations/api/scan", {"code": theirs.visit_code})
    assert refused.status_code == 404 and "at your counters" in refused.json()["error"]
    assert booking_row(app, theirs.id).status == BOOKED
    assert console.post("/console/reservations/api/scan", {"code": "B23456789X"}).status_code == 404
    assert console.post("/console/reservations/api/scan", {"code": "hello"}).status_code == 404
    not_today = console.post("/console/reservations/api/scan", {"code": later.visit_code})
    assert not_today.status_code == 409 and "not today" in not_today.json()["error"]
    assert booking_row(app, later.id).status == BOOKED


# -- confirm / decline (the no-show rule) --------------------------------------------------------

def requested_booking(app, service_id: int, resource_id: int, openid: str, key: str) -> Booking:
    """A booking by a shopper with two recent no-shows: it waits for the counter."""
    with uow(app) as session:
        for n in range(2):
            start = utcnow() - timedelta(days=n + 2)
            session.add(Booking(service_id=service_id, resource_id=resource_id, starts_at=start,
                                ends_at=start + timedelta(minutes=30), openid=openid, idempotency_key=f"{key}-old-{n}",
                                status=NO_SHOW))
    at = on_grid(app, service_id, hours_ahead=3)
    with uow(app) as session:
        booking = bookings.book(service_id, at, openid, key)
        session.expunge(booking)
    assert booking.status == REQUESTED
    return booking


def test_the_counter_confirms_or_declines_bookings_that_wait_for_it(app, base_url):
    made = two_counters(app)
    first = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000001", "a")
    second = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000002", "b")
    console = console_as(app, base_url, "staff_x")
    board = console.get(f"/console/reservations/day?counter={X}").text
    assert f'id="requested-{first.id}"' in board and f'id="requested-{second.id}"' in board

    assert console.post(f"/console/reservations/api/bookings/{first.id}/confirm").json()["status"] == BOOKED
    declined = console.post(f"/console/reservations/api/bookings/{second.id}/decline", {"reason": "今日已满"})
    assert declined.status_code == 200 and declined.json()["status"] == CANCELLED
    assert booking_row(app, second.id).cancel_reason == "今日已满"
    again = console.post(f"/console/reservations/api/bookings/{first.id}/confirm")
    assert again.status_code == 409 and "booked booking cannot become booked" in again.json()["error"]
    day = slots.store_day(first.starts_at).isoformat()
    board = console.get(f"/console/reservations/api/board?counter={X}&date={day}").text
    assert "requested-" not in board
    assert re.search(rf'data-booking="{first.id}" data-status="booked"', board)  # on the grid, confirmed


def test_another_counters_staff_cannot_confirm_or_decline(app, base_url):
    made = two_counters(app)
    waiting = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000003", "c")
    console = console_as(app, base_url, "staff_y")
    for action in ("confirm", "decline"):
        assert console.post(f"/console/reservations/api/bookings/{waiting.id}/{action}").status_code == 404
    assert booking_row(app, waiting.id).status == REQUESTED


# -- goods and the CSV import --------------------------------------------------------------------

GOOD = ("counter_code,brand,product,variant,holdable\n"
        "LANCOME,兰蔻,小黑瓶 50ml,50ml,5\n"
        "LANCOME,兰蔻,粉水 400ml,400ml,2\n")


def upload(console: Console, text: str) -> requests.Response:
    return console.post("/console/reservations/api/variants/import",
                        files={"file": ("goods.csv", text.encode("utf-8"), "text/csv")})


def variants(app, counter: str = X) -> dict[tuple[str, str], tuple[int, int]]:
    with uow(app) as session:
        return {(v.product, v.variant): (v.holdable, v.held) for v in session.scalars(
            select(HoldableVariant).where(HoldableVariant.counter_code == counter))}


def test_a_good_csv_creates_the_goods_and_importing_it_again_changes_nothing(app, base_url):
    staff(app, "admin", "admin")
    console = sign_in(base_url, "admin")
    first = upload(console, "\ufeff" + GOOD)
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["updated"]) == (2, 0)
    assert variants(app) == {("小黑瓶 50ml", "50ml"): (5, 0), ("粉水 400ml", "400ml"): (2, 0)}
    again = upload(console, GOOD)
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 2)
    changed = upload(console, GOOD.replace(",2\n", ",4\n"))
    assert (changed.json()["created"], changed.json()["updated"], changed.json()["unchanged"]) == (0, 1, 1)
    assert variants(app)[("粉水 400ml", "400ml")] == (4, 0)
    page = console.get(f"/console/reservations/goods?counter={X}").text
    assert "小黑瓶 50ml" in page and "粉水 400ml" in page


def test_a_csv_with_bad_rows_names_their_lines_and_applies_nothing(app, base_url):
    staff(app, "admin", "admin")
    console = sign_in(base_url, "admin")
    bad = GOOD + "LANCOME,兰蔻,,30ml,1\nLANCOME,兰蔻,面霜,30ml,many\nLANCOME,兰蔻,小黑瓶 50ml,50ml,9\n"
    response = upload(console, bad)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e.split(":")[0] for e in errors] == ["line 4", "line 5", "line 6"]
    assert "product is 1-128 characters" in errors[0] and "holdable is a whole number" in errors[1]
    assert "same counter, product and variant as line 2" in errors[2]
    assert variants(app) == {}  # not even the good rows
    assert upload(console, "brand,product\nx,y\n").json()["errors"] == [
        ("line 1: missing column(s) counter_code, variant, holdable; the columns are "
         "counter_code, brand, product, variant, holdable")]


def test_holdable_never_goes_below_what_is_held_now(app, base_url):
    staff(app, "staff_x", "counter", X)
    console = sign_in(base_url, "staff_x")
    assert upload(console, GOOD).status_code == 200
    with uow(app) as session:
        item = session.scalar(select(HoldableVariant.id).where(HoldableVariant.product == "粉水 400ml"))
    hold_today(app, item, key="h-1")
    hold_today(app, item, openid="oAnotherShopper0000000001", key="h-2")
    lowered = upload(console, GOOD.replace(",2\n", ",1\n"))
    assert lowered.status_code == 422 and lowered.json()["errors"] == [
        "line 3: 2 unit(s) of 粉水 400ml 400ml are held now; holdable cannot go below that"]
    edit = console.post(f"/console/reservations/api/variants/{item}", {"holdable": 1})
    assert edit.status_code == 409 and "2 unit(s) are held now" in edit.json()["error"]
    assert console.post(f"/console/reservations/api/variants/{item}", {"holdable": 6}).json() == {
        "id": item, "holdable": 6, "held": 2}
    assert variants(app)[("粉水 400ml", "400ml")] == (6, 2)


def test_counter_staff_import_and_edit_only_their_counters_goods(app, base_url):
    made = two_counters(app)
    console = console_as(app, base_url, "staff_x")
    response = upload(console, GOOD + "DIOR,迪奥,口红,999,3\n")
    assert response.status_code == 422 and response.json()["errors"] == ["line 4: counter DIOR is not one of yours"]
    assert console.post(f"/console/reservations/api/variants/{made['vy']}", {"holdable": 0}).status_code == 404
    assert variants(app, Y) == {("小黑瓶 50ml", "50ml"): (3, 0)}


# -- paying at the counter after the visit -------------------------------------------------------

def test_a_checked_in_booking_is_paid_at_the_counter_and_carries_the_order(app, base_url):
    made = two_counters(app)
    booking = book_today(app, made["sx"])
    console = console_as(app, base_url, "staff_x")
    early = console.post("/console/counter/api/orders", {"amount": "88.00", "counter": X,
                                                        "reservation": booking.visit_code})
    assert early.status_code == 409 and "check the shopper in" in early.json()["error"]

    pay_url = console.post("/console/reservations/api/scan", {"code": booking.visit_code}).json()["pay_url"]
    till = console.get(pay_url)
    assert till.status_code == 200 and f'id="reservation" data-code="{booking.visit_code}"' in till.text
    created = console.post("/console/counter/api/orders", {"amount": "88.00", "counter": X, "description": "护理",
                                                          "reservation": booking.visit_code})
    assert created.status_code == 201, created.text
    order = created.json()["order"]
    with uow(app) as session:
        source = session.scalar(select(Order.source).where(Order.out_trade_no == order["out_trade_no"]))
    assert source == f"reservation:{booking.visit_code}"
    assert booking_row(app, booking.id).out_trade_no == order["out_trade_no"]

    assert control(base_url, "pay", code_url=order["code_url"], openid=SHOPPER).status_code == 200
    eventually(lambda: console.get(f"/console/counter/api/orders/{order['out_trade_no']}").json()["order"]["state"]
               == "PAID", "the payment notification")
    board = console.get(f"/console/reservations/api/board?counter={X}").text
    row = re.search(rf'<tr id="arrival-{booking.id}".*?</tr>', board, re.DOTALL).group(0)
    assert order["out_trade_no"] in row and "PAID" in row and "Take payment" not in row
    twice = console.post("/console/counter/api/orders", {"amount": "1.00", "counter": X,
                                                        "reservation": booking.visit_code})
    assert twice.status_code == 409 and "paid already" in twice.json()["error"]


def test_another_counter_cannot_take_payment_for_a_reservation(app, base_url):
    made = two_counters(app)
    hold = hold_today(app, made["vx"])
    with uow(app):
        holds.visit(hold.id)
    console = console_as(app, base_url, "staff_y")
    refused = console.post("/console/counter/api/orders", {"amount": "10.00", "counter": Y,
                                                          "reservation": hold.visit_code})
    assert refused.status_code == 404
    with uow(app) as session:
        assert session.scalar(select(Order.id)) is None
    assert "reservation-error" in console.get(f"/console/counter/?counter={Y}&reservation={hold.visit_code}").text


# -- the desk's side panel -----------------------------------------------------------------------

def test_the_desk_panel_shows_the_shoppers_upcoming_bookings_and_holds(app):
    made = two_counters(app)
    member = make_member(app, name="李女士", oa_openid="oShopperOnTheOA0000000001")
    at, elsewhere = on_grid(app, made["sx"], hours_ahead=30), on_grid(app, made["sy"], hours_ahead=30)
    with uow(app):
        soon = bookings.book(made["sx"], at, "oShopperInTheMp0000000001", "p-1", member_id=member).id
        gone = bookings.book(made["sy"], elsewhere, "oShopperInTheMp0000000001", "p-2", member_id=member).id
        bookings.cancel(gone, "changed my mind", openid="oShopperInTheMp0000000001")
        holds.hold(made["vy"], "oShopperInTheMp0000000001", "p-3", today() + timedelta(days=1), member_id=member)
        bookings.book(made["sx"], at, "oSomeoneElse0000000000001", "p-4")
    team = make_team(app, "service")
    lin = make_agent(app, team, "lin")
    chat = conv(app, "oShopperOnTheOA0000000001", team_id=team, status=ASSIGNED, assignee=lin, member_id=member)
    with uow(app) as session:
        shown = panel.side_panel(agent(session, lin), chat)["reservations"]
    assert [(r["kind"], r["status"], r["counter"]) for r in shown] == [("booking", BOOKED, X), ("hold", "held", Y)]
    assert shown[0]["id"] == soon and shown[0]["starts_at"] == at.isoformat()
    assert "visit_code" not in repr(shown) and "兰蔻 小黑瓶 50ml 50ml" == shown[1]["what"]


def test_grant_role_from_the_command_line(app):
    make_plain_staff(app, "mei")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "grant-role", "mei", "counter", "--counter", X])
    assert result.exit_code == 0 and "mei: counter of LANCOME" in result.output
    assert runner.invoke(args=["staff", "grant-role", "mei", "counter"]).exit_code != 0  # which counter?
    assert runner.invoke(args=["staff", "grant-role", "mei", "admin"]).exit_code == 0
    with uow(app):
        assert staff_service.counters_of(staff_service.get_staff("mei").id) is None
