"""The counter's Native (QR) flow against the WeChat Pay emulator, and the console's counter API.

The app runs with the demo merchant, which the emulator knows: orders really go to
/_emulator/pay, the shopper pays there, and the emulator's signed, encrypted notification reaches
the app's own POST /pay/notify.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import select

from members import staff as staff_service
from members.models import PointsEntry
from payments import counter, jobs, service
from payments.config import current_payment_config
from payments.models import Order, PaymentTransaction
from payments.shapes import Transaction
from tests.integration.members_helpers import balance, make_member, make_staff, uow
from wx_service.ground.validation import parse

COUNTER = "1F-cosmetics"
SHOPPER = "oShopperCounter0000000000001"
PASSWORD = "till-pass-1234"


# -- helpers ---------------------------------------------------------------------------------------

def control(base_url: str, what: str, **body: Any) -> requests.Response:
    return requests.post(f"{base_url}/_emulator/pay/control/{what}", json=body, timeout=10)


def emu_state(base_url: str) -> dict:
    return requests.get(f"{base_url}/_emulator/pay/control/state", timeout=10).json()


def emu_order(base_url: str, out_trade_no: str) -> dict | None:
    return next((o for o in emu_state(base_url)["orders"] if o["out_trade_no"] == out_trade_no), None)


def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll until `check` returns something truthy (the emulator notifies from its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def in_app(app, fn: Callable[[], Any]) -> Any:
    with app.app_context():
        return fn()


def open_order(app, amount_fen: int = 12_800, staff_id: int | None = None) -> Order:
    return in_app(app, lambda: counter.open_native_order(amount_fen, COUNTER, staff_id, "口红 lipstick"))


def view(app, out_trade_no: str) -> dict:
    return in_app(app, lambda: counter.order_view(out_trade_no))


def payment_entries(app, out_trade_no: str) -> list[PointsEntry]:
    with uow(app) as session:
        return list(session.scalars(select(PointsEntry).where(PointsEntry.ref_key == out_trade_no)))


def transactions(app, out_trade_no: str) -> list[PaymentTransaction]:
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
        return list(session.scalars(select(PaymentTransaction).where(PaymentTransaction.order_id == order.id)
                                    .order_by(PaymentTransaction.id)))


def order_count(app) -> int:
    with uow(app) as session:
        return len(list(session.scalars(select(Order.id))))


# -- amounts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fen", [("128.00", 12_800), ("128", 12_800), ("0.01", 1), ("99.9", 9_990),
                                      (" 19.99 ", 1_999), ("50000", 5_000_000), ("0.29", 29), ("1.15", 115)])
def test_yuan_become_exact_fen(text, fen):
    assert counter.parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["", "0", "0.00", "-1", "1e3", "12.345", "50000.01", "abc", "1,000", "NaN",
                                  "１２", ".5", "5.", None, 12.5, 128])
def test_bad_amounts_are_refused(text):
    with pytest.raises(counter.BadAmount):
        counter.parse_yuan(text)


# -- the Native flow -------------------------------------------------------------------------------

def test_a_member_pays_the_qr_and_gets_points_once(app, base_url):
    member_id = make_member(app, oa_openid=SHOPPER)
    staff_id = make_staff(app, "mei")
    order = open_order(app, staff_id=staff_id)
    assert order.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert re.fullmatch(r"N\d{24}", order.out_trade_no)
    shown = view(app, order.out_trade_no)
    assert (shown["state"], shown["amount_yuan"], shown["code_url"]) == ("CREATED", "128.00", order.code_url)
    assert 0 < shown["seconds_left"] <= 15 * 60 and not shown["expired"]
    at_wechat = emu_order(base_url, order.out_trade_no)
    assert at_wechat["trade_state"] == "NOTPAY" and at_wechat["trade_type"] == "NATIVE"
    assert at_wechat["attach"] == ""  # nothing of ours rides along to WeChat
    with uow(app) as session:
        assert session.scalar(select(Order.staff_id).where(Order.out_trade_no == order.out_trade_no)) == staff_id

    paid = control(base_url, "pay", code_url=order.code_url, openid=SHOPPER)
    assert paid.status_code == 200, paid.text
    shown = eventually(lambda: (v := view(app, order.out_trade_no))["state"] == "PAID" and v, "the order paid")
    assert shown["code_url"] is None  # nothing left to scan
    assert shown["payer"] and SHOPPER not in shown["payer"]  # masked
    assert shown["paid_at"] and shown["points_awarded"] and shown["points_awarded"] > 0
    assert balance(app, member_id) == shown["points_awarded"]
    notification = emu_state(base_url)["notifications"][0]
    assert notification["url"] == f"{base_url}/pay/notify" and notification["delivered"]

    # The same news again (a query answer, a cancel pressed late) changes nothing.
    answer = in_app(app, lambda: current_payment_config().gateway(order.appid).query_by_out_trade_no(order.out_trade_no))
    with uow(app):
        again = service.apply_payment_notification(parse(Transaction, answer), None,
                                                   mchid=current_payment_config().mchid)
    assert again.outcome == "IGNORED"
    assert in_app(app, lambda: counter.cancel(order.out_trade_no))["state"] == "PAID"
    assert len(payment_entries(app, order.out_trade_no)) == 1
    assert balance(app, member_id) == shown["points_awarded"]


def test_a_shopper_who_is_not_a_member_pays_without_points(app, base_url):
    order = open_order(app, amount_fen=1)
    assert control(base_url, "pay", code_url=order.code_url, openid="oStranger000000000000000001").status_code == 200
    shown = eventually(lambda: (v := view(app, order.out_trade_no))["state"] == "PAID" and v, "the order paid")
    assert shown["points_awarded"] is None and shown["payer"]


def test_wechat_refusing_the_order_closes_it_and_says_why(app, base_url):
    control(base_url, "faults", api="native", status=400, code="PARAM_ERROR", message="商户号与appid不匹配")
    with pytest.raises(counter.WechatRefused) as refused:
        open_order(app)
    assert "PARAM_ERROR" in refused.value.message and "商户号与appid不匹配" in refused.value.message
    shown = view(app, refused.value.out_trade_no)
    assert shown["state"] == "CLOSED" and shown["code_url"] is None
    with uow(app) as session:
        assert session.scalar(select(Order.closed_at).where(Order.out_trade_no == refused.value.out_trade_no))
    assert emu_order(base_url, refused.value.out_trade_no) is None


def test_a_wechat_5xx_leaves_the_order_created_without_a_qr(app, base_url):
    control(base_url, "faults", api="native", status=500, code="SYSTEM_ERROR")
    with pytest.raises(counter.OutcomeUnknown) as unknown:
        open_order(app)
    assert "try again" in unknown.value.message
    shown = view(app, unknown.value.out_trade_no)
    assert shown["state"] == "CREATED" and shown["code_url"] is None


def test_a_timeout_leaves_the_order_created_and_cancel_still_ends_it_at_wechat(app, base_url, monkeypatch):
    gateway = in_app(app, lambda: current_payment_config().gateway(app.extensions["wx"].settings.WECHAT_APPID))
    monkeypatch.setattr(gateway, "timeout", (2.0, 0.5))
    control(base_url, "faults", api="native", delay=1.5)  # answers, but after we stopped waiting
    with pytest.raises(counter.OutcomeUnknown) as unknown:
        open_order(app)
    no = unknown.value.out_trade_no
    shown = view(app, no)
    assert shown["state"] == "CREATED" and shown["code_url"] is None
    # The request did reach WeChat: the order exists there, unknown to the till. Cancel ends it.
    eventually(lambda: emu_order(base_url, no), "the late order at WeChat")
    monkeypatch.undo()
    assert in_app(app, lambda: counter.cancel(no))["state"] == "CLOSED"
    assert emu_order(base_url, no)["trade_state"] == "CLOSED"


def test_cancel_closes_an_unpaid_qr_at_wechat_and_here(app, base_url):
    order = open_order(app)
    shown = in_app(app, lambda: counter.cancel(order.out_trade_no))
    assert shown["state"] == "CLOSED" and shown["code_url"] is None
    assert emu_order(base_url, order.out_trade_no)["trade_state"] == "CLOSED"
    late = control(base_url, "pay", code_url=order.code_url, openid=SHOPPER)
    assert late.status_code == 409  # the shopper can no longer pay it
    assert in_app(app, lambda: counter.cancel(order.out_trade_no))["state"] == "CLOSED"  # twice is fine


def test_cancel_when_wechat_is_down_changes_nothing(app, base_url):
    order = open_order(app)
    control(base_url, "faults", api="close", status=500, code="SYSTEM_ERROR")
    with pytest.raises(counter.OutcomeUnknown):
        in_app(app, lambda: counter.cancel(order.out_trade_no))
    assert view(app, order.out_trade_no)["state"] == "CREATED"
    assert emu_order(base_url, order.out_trade_no)["trade_state"] == "NOTPAY"


def test_cancel_refused_for_no_reason_is_flagged_not_hidden(app, base_url):
    order = open_order(app)
    control(base_url, "faults", api="close", status=403, code="RULE_LIMIT", message="不允许关闭")
    with pytest.raises(counter.CloseRefused):
        in_app(app, lambda: counter.cancel(order.out_trade_no))
    shown = view(app, order.out_trade_no)
    assert shown["state"] == "CREATED" and shown["needs_reconcile"]


def test_cancel_racing_a_payment_applies_the_payment_and_points_once(app, base_url, monkeypatch):
    """The shopper pays just as staff press Cancel, and the notification has not got through yet
    (our /pay/notify is made to answer 503): close is refused, the query says SUCCESS, the order
    is paid with points. When WeChat's retry arrives later it changes nothing."""
    member_id = make_member(app, oa_openid=SHOPPER)
    order = open_order(app)
    config = app.extensions["wx_pay"]
    control(base_url, "config", notify_time_factor=15)  # the first retry after 1 s
    monkeypatch.setattr(jobs, "current_payment_config", lambda: config)  # cancel closes through jobs
    monkeypatch.setitem(app.extensions, "wx_pay", None)  # /pay/notify answers 503 meanwhile
    assert control(base_url, "pay", code_url=order.code_url, openid=SHOPPER).status_code == 200
    eventually(lambda: emu_state(base_url)["notifications"][0]["attempts"], "the first notification attempt")
    assert view(app, order.out_trade_no)["state"] == "CREATED"

    shown = in_app(app, lambda: counter.cancel(order.out_trade_no))
    assert shown["state"] == "PAID" and shown["points_awarded"] > 0
    assert emu_order(base_url, order.out_trade_no)["trade_state"] == "SUCCESS"

    monkeypatch.setitem(app.extensions, "wx_pay", config)
    eventually(lambda: emu_state(base_url)["notifications"][0]["delivered"], "the notification retry")
    assert view(app, order.out_trade_no)["state"] == "PAID"
    assert [(t.notification_id is None, t.outcome) for t in transactions(app, order.out_trade_no)] == [
        (True, "APPLIED"), (False, "IGNORED")]
    assert len(payment_entries(app, order.out_trade_no)) == 1
    assert balance(app, member_id) == shown["points_awarded"]


# -- the console's counter API ---------------------------------------------------------------------

@pytest.fixture
def till(app, base_url) -> requests.Session:
    """A staff member signed in to the console, with the counter chosen (?counter=…)."""
    make_staff(app, "mei")
    with uow(app):
        staff_service.set_password("mei", PASSWORD)
        staff_service.grant_role("mei", staff_service.CASHIER)
    session = requests.Session()
    page = session.get(f"{base_url}/console/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed = session.post(f"{base_url}/console/login", data={"csrf_token": token, "username": "mei",
                                                             "password": PASSWORD}, timeout=10)
    assert signed.status_code == 200
    page = session.get(f"{base_url}/console/counter/", params={"counter": COUNTER}, timeout=10)
    assert page.status_code == 200 and COUNTER in page.text
    session.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    return session


def test_the_counter_api_needs_sign_in_and_csrf(app, base_url, till):
    anonymous = requests.post(f"{base_url}/console/counter/api/orders", json={"amount": "1.00"}, timeout=10)
    assert anonymous.status_code == 401
    no_csrf = requests.post(f"{base_url}/console/counter/api/orders", json={"amount": "1.00"},
                            cookies=till.cookies, timeout=10)
    assert no_csrf.status_code == 403
    assert order_count(app) == 0


def test_staff_make_a_qr_see_it_paid_and_listed(app, base_url, till):
    made = till.post(f"{base_url}/console/counter/api/orders", json={"amount": "128.00", "description": "口红"},
                     timeout=15)
    assert made.status_code == 201, made.text
    order = made.json()["order"]
    assert (order["amount_fen"], order["counter"], order["state"]) == (12_800, COUNTER, "CREATED")
    png = till.get(f"{base_url}/console/counter/api/orders/{order['out_trade_no']}/qr.png", timeout=10)
    assert png.headers["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert requests.get(f"{base_url}/console/counter/api/orders/{order['out_trade_no']}/qr.png",
                        timeout=10).status_code == 401
    assert control(base_url, "pay", code_url=order["code_url"], openid=SHOPPER).status_code == 200
    url = f"{base_url}/console/counter/api/orders/{order['out_trade_no']}"
    eventually(lambda: till.get(url, timeout=10).json()["order"]["state"] == "PAID", "the page's poll to say PAID")
    assert till.get(png.url, timeout=10).status_code == 404  # a paid order has no QR to show
    listed = till.get(f"{base_url}/console/counter/api/orders", timeout=10).json()
    assert [o["out_trade_no"] for o in listed["orders"]] == [order["out_trade_no"]]


@pytest.mark.parametrize("body", [{"amount": "0"}, {"amount": "-5"}, {"amount": "12.345"}, {"amount": 12.5},
                                  {"amount": "60000"}, {}, {"amount": "1.00", "description": "x" * 200},
                                  {"amount": "1.00", "counter": "no spaces allowed"}])
def test_bad_input_is_a_clear_400_and_creates_nothing(app, base_url, till, body):
    response = till.post(f"{base_url}/console/counter/api/orders", json=body, timeout=10)
    assert response.status_code == 400 and response.json()["error"]
    assert order_count(app) == 0
    assert emu_state(base_url)["orders"] == []


def test_wechat_refusal_reaches_staff_as_a_502_with_the_closed_order(app, base_url, till):
    control(base_url, "faults", api="native", status=403, code="RULE_LIMIT", message="交易金额超限")
    response = till.post(f"{base_url}/console/counter/api/orders", json={"amount": "9.90"}, timeout=15)
    assert response.status_code == 502
    assert "RULE_LIMIT" in response.json()["error"] and response.json()["order"]["state"] == "CLOSED"


def test_staff_cancel_from_the_console(app, base_url, till):
    order = till.post(f"{base_url}/console/counter/api/orders", json={"amount": "5"}, timeout=15).json()["order"]
    cancelled = till.post(f"{base_url}/console/counter/api/orders/{order['out_trade_no']}/cancel", timeout=15)
    assert cancelled.status_code == 200 and cancelled.json()["order"]["state"] == "CLOSED"
    assert till.get(f"{base_url}/console/counter/api/orders/NOPE", timeout=10).status_code == 404
