"""JSAPI payment from the mini-program end to end: /api/mp/pay/orders against the emulated WeChat Pay.

The mini-program logs in through the emulator, asks for an order, gets wx.requestPayment's
parameters (paySign checked with the merchant's public key over the §10.7 string), the shopper
pays in the emulator, WeChat's notification reaches /pay/notify, and the order reads PAID for its
buyer only. Every answer is checked against the served OpenAPI document.
"""
from __future__ import annotations

import time

import pytest
import requests
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select

from members.models import Member
from payments.exceptions import SignatureInvalid
from payments.models import Order
from payments.wxpay_v3 import build_pay_sign_message, verify_signature
from tests.e2e.test_mp_api import Client, check_against_spec
from tests.integration.members_helpers import uow

TIMEOUT = 15
ORDER_PATH = "/pay/orders/{out_trade_no}"


@pytest.fixture
def mp(base_url, emulator) -> Client:
    return Client(base_url, emulator)


def shopper(emulator, index: int = 0):
    return list(emulator.shoppers.values())[index]


def control(base_url: str, what: str, **body) -> requests.Response:
    return requests.post(f"{base_url}/_emulator/pay/control/{what}", json=body, timeout=TIMEOUT)


def emu_order(base_url: str, out_trade_no: str) -> dict | None:
    orders = requests.get(f"{base_url}/_emulator/pay/control/state", timeout=TIMEOUT).json()["orders"]
    return next((o for o in orders if o["out_trade_no"] == out_trade_no), None)


def get_order(mp: Client, out_trade_no: str, **kw) -> requests.Response:
    response = mp.call("GET", f"/pay/orders/{out_trade_no}", check=False, **kw)
    check_against_spec("GET", ORDER_PATH, response)
    return response


def orders_in_db(app) -> list[Order]:
    with uow(app) as session:
        return list(session.scalars(select(Order)))


def test_prepay_gives_signed_pay_params_and_the_payment_lands(app, base_url, emulator, mp):
    buyer = shopper(emulator)
    member = mp.login(buyer.openid)["member"]
    made = mp.call("POST", "/pay/orders", json={"amount_fen": 12_800, "description": "会员商城 · 围巾"})
    assert made.status_code == 201, made.text
    order, params = made.json()["order"], made.json()["pay_params"]
    assert (order["state"], order["paid"], order["amount_fen"]) == ("CREATED", False, 12_800)

    # wx.requestPayment's parameters: paySign verifies with the merchant's public key over §10.7's string.
    mp_appid = app.extensions["wx"].settings.mp_appid
    at_wechat = emu_order(base_url, order["out_trade_no"])
    assert params["appId"] == mp_appid and params["signType"] == "RSA"
    assert abs(int(params["timeStamp"]) - time.time()) < 300
    public_key = app.extensions["wx_pay"].signer.private_key.public_key()
    message = build_pay_sign_message(mp_appid, params["timeStamp"], params["nonceStr"], params["package"])
    assert message == f"{mp_appid}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    verify_signature(public_key, message, params["paySign"])  # raises if it does not verify
    with pytest.raises(SignatureInvalid):
        verify_signature(public_key, message.replace(b"prepay_id=", b"prepay_id=x"), params["paySign"])

    # The order at WeChat is for the mini-program's app and this buyer's mini-program openid.
    assert (at_wechat["appid"], at_wechat["trade_type"]) == (mp_appid, "JSAPI")
    with uow(app) as session:
        row = session.scalar(select(Order).where(Order.out_trade_no == order["out_trade_no"]))
        assert (row.kind, row.payer_openid, row.member_id, row.counter) == ("jsapi", buyer.mp_openid, member["id"], "mp")
        assert params["package"] == f"prepay_id={row.prepay_id}"

    # Someone else's phone cannot pay this prepay; the buyer can.
    assert control(base_url, "pay", prepay_id=row.prepay_id, openid="oMpSomeoneElse").status_code == 409
    assert control(base_url, "pay", prepay_id=row.prepay_id, openid=buyer.mp_openid).status_code == 200
    deadline = time.monotonic() + TIMEOUT
    while (seen := get_order(mp, order["out_trade_no"]).json()["order"])["state"] != "PAID":
        assert time.monotonic() < deadline, "the payment notification never landed"
        time.sleep(0.1)
    assert seen["paid"] and seen["paid_at"] and seen["points_awarded"] > 0
    with uow(app) as session:
        assert session.get(Member, member["id"]).points_balance == seen["points_awarded"]


def test_only_the_buyer_sees_the_order(app, base_url, emulator, mp, monkeypatch):
    mp.login(shopper(emulator, 0).openid)
    no = mp.call("POST", "/pay/orders", json={"amount_fen": 100, "description": "咖啡"}).json()["order"]["out_trade_no"]
    assert get_order(mp, no).status_code == 200
    other = Client(base_url, emulator)
    other.login(shopper(emulator, 1).openid)
    hidden = get_order(other, no)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    assert get_order(other, "N" + "0" * 31).status_code == 404
    assert get_order(mp, no, token="not-a-token").status_code == 401
    assert mp.call("POST", "/pay/orders", token="not-a-token",
                   json={"amount_fen": 100, "description": "x"}).status_code == 401


@pytest.mark.parametrize("body", [{"amount_fen": 0, "description": "x"}, {"amount_fen": -1, "description": "x"},
                                  {"amount_fen": 1.5, "description": "x"}, {"amount_fen": "100", "description": "x"},
                                  {"amount_fen": True, "description": "x"}, {"amount_fen": 5_000_001, "description": "x"},
                                  {"amount_fen": 100}, {"amount_fen": 100, "description": "  "},
                                  {"amount_fen": 100, "description": "x" * 128}, [1, 2]])
def test_a_bad_body_is_400_and_creates_nothing(app, base_url, emulator, mp, body):
    mp.login(shopper(emulator).openid)
    response = mp.call("POST", "/pay/orders", json=body)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert orders_in_db(app) == []
    assert requests.get(f"{base_url}/_emulator/pay/control/state", timeout=TIMEOUT).json()["orders"] == []


def test_wechat_refusing_is_502_and_the_order_is_closed(app, base_url, emulator, mp):
    mp.login(shopper(emulator).openid)
    control(base_url, "faults", api="jsapi", status=403, code="NOAUTH", message="商户无此接口权限")
    response = mp.call("POST", "/pay/orders", json={"amount_fen": 100, "description": "咖啡"})
    assert response.status_code == 502 and response.json()["error"] == "payment_refused"
    assert "NOAUTH" in response.json()["message"]
    assert get_order(mp, response.json()["out_trade_no"]).json()["order"]["state"] == "CLOSED"


def test_wechat_5xx_is_503_and_the_order_stays_unpaid(app, base_url, emulator, mp):
    mp.login(shopper(emulator).openid)
    control(base_url, "faults", api="jsapi", status=500, code="SYSTEM_ERROR")
    response = mp.call("POST", "/pay/orders", json={"amount_fen": 100, "description": "咖啡"})
    assert response.status_code == 503 and response.json()["error"] == "payment_unavailable"
    assert get_order(mp, response.json()["out_trade_no"]).json()["order"]["state"] == "CREATED"


def test_the_spec_documents_the_pay_endpoints(mp, app):
    served = mp.call("GET", "/openapi.json").json()
    validate_spec(served)
    flask_rules = {rule.rule.removeprefix("/api/mp").replace("<out_trade_no>", "{out_trade_no}")
                   for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/mp/pay/")}
    assert flask_rules == {"/pay/orders", ORDER_PATH} <= set(served["paths"])
    assert set(served["paths"]["/pay/orders"]) == {"post"} and set(served["paths"][ORDER_PATH]) == {"get"}
