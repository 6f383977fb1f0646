"""JSAPI pay from the OA's own web pages, over HTTP: WeChat's web authorization (snsapi_base)
through the emulator, then the pay page's JSON call, the signed getBrandWCPayRequest parameters,
the shopper paying at the emulated WeChat Pay and the order turning PAID, with points, for its
buyer only.

Redirects are followed by hand so that each hop (our /h5/oauth/start, WeChat's authorize page, our
callback) is checked as a browser inside WeChat would meet it.
"""
from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from payments.exceptions import SignatureInvalid
from payments.models import Order
from payments.wxpay_v3 import build_pay_sign_message, verify_signature
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.integration.members_helpers import entries, make_member, uow

TIMEOUT = 15


# -- helpers ---------------------------------------------------------------------------------------

def shopper(emulator, index: int = 0):
    return list(emulator.shoppers.values())[index]


def location(response: requests.Response) -> str:
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return response.headers["Location"]


def go(http: requests.Session, url: str) -> requests.Response:
    return http.get(url, allow_redirects=False, timeout=TIMEOUT)


def at_wechat(authorize_url: str, openid: str) -> str:
    """The emulated phone at WeChat's authorize page, as the shopper `openid` (emulator-only
    parameter; the fragment is the browser's, never sent)."""
    without_fragment = authorize_url.split("#", 1)[0]
    return f"{without_fragment}&{urlencode({'openid': openid})}"


def start(base_url: str, http: requests.Session, next_path: str = "/h5/pay") -> str:
    """/h5/oauth/start → WeChat's authorize URL (checked for shape)."""
    return location(go(http, f"{base_url}/h5/oauth/start?{urlencode({'next': next_path})}"))


def callback_url(base_url: str, http: requests.Session, openid: str, next_path: str = "/h5/pay") -> str:
    """Start the flow in `http` and let WeChat (the emulator) answer: our callback URL with code+state."""
    return location(go(http, at_wechat(start(base_url, http, next_path), openid)))


def sign_in(base_url: str, openid: str, next_path: str = "/h5/pay") -> requests.Session:
    http = requests.Session()
    landed = location(go(http, callback_url(base_url, http, openid, next_path)))
    assert landed == next_path
    return http


def session_of(app, http: requests.Session) -> dict:
    """What the signed session cookie holds (Flask's own serializer, so a forged cookie fails)."""
    cookie = http.cookies.get(app.config["SESSION_COOKIE_NAME"])
    if cookie is None:  # an emptied session is deleted
        return {}
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie))


def csrf_of(base_url: str, http: requests.Session, query: str = "") -> str:
    page = go(http, f"{base_url}/h5/pay{query}")
    assert page.status_code == 200, page.text[:300]
    return re.search(r'<meta name="h5-csrf" content="([^"]+)"', page.text).group(1)


def new_order(base_url: str, http: requests.Session, csrf: str | None, body) -> requests.Response:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return http.post(f"{base_url}/h5/pay/orders", json=body, headers=headers, timeout=TIMEOUT)


def order_view(base_url: str, http: requests.Session, out_trade_no: str) -> requests.Response:
    return http.get(f"{base_url}/h5/pay/orders/{out_trade_no}", timeout=TIMEOUT)


def emu_order(base_url: str, out_trade_no: str) -> dict | None:
    orders = requests.get(f"{base_url}/_emulator/pay/control/state", timeout=TIMEOUT).json()["orders"]
    return next((o for o in orders if o["out_trade_no"] == out_trade_no), None)


def orders_in_db(app) -> list[Order]:
    with uow(app) as session:
        return list(session.scalars(select(Order)))


# -- web authorization -----------------------------------------------------------------------------

def test_the_oauth_round_trip_puts_the_shoppers_oa_openid_in_the_session(app, base_url, emulator):
    buyer = shopper(emulator, 1)
    http = requests.Session()
    # The pay page sends an unknown shopper to sign in first, remembering where they were going.
    first = location(go(http, f"{base_url}/h5/pay?amount_fen=12800&counter=cosmetics-l2"))
    assert urlsplit(first).path == "/h5/oauth/start"
    assert parse_qs(urlsplit(first).query)["next"] == ["/h5/pay?amount_fen=12800&counter=cosmetics-l2"]

    authorize = location(go(http, f"{base_url}{first}" if first.startswith("/") else first))
    parts = urlsplit(authorize)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{base_url}/_emulator/connect/oauth2/authorize"
    assert parts.fragment == "wechat_redirect"
    query = parse_qs(parts.query)
    assert list(parse_qs(parts.query)) == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert query["appid"] == [app.extensions["wx"].settings.WECHAT_APPID]
    assert query["redirect_uri"] == [f"{base_url}/h5/oauth/callback"]
    assert (query["response_type"], query["scope"]) == (["code"], ["snsapi_base"])
    assert re.fullmatch(r"[A-Za-z0-9]{16,128}", query["state"][0])
    assert "h5_openid" not in session_of(app, http)

    back = location(go(http, at_wechat(authorize, buyer.openid)))
    assert back.startswith(f"{base_url}/h5/oauth/callback?")
    assert parse_qs(urlsplit(back).query)["state"] == query["state"]
    signed_in = go(http, back)
    assert location(signed_in) == "/h5/pay?amount_fen=12800&counter=cosmetics-l2"
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert session_of(app, http)["h5_openid"] == buyer.openid

    page = go(http, f"{base_url}/h5/pay?amount_fen=12800&counter=cosmetics-l2")
    assert page.status_code == 200 and "¥ 128.00" in page.text
    assert buyer.openid not in page.text  # the page never needs the openid itself


def test_a_used_or_unknown_code_is_a_clear_400_and_signs_nobody_in(app, base_url, emulator):
    first = requests.Session()
    link = callback_url(base_url, first, shopper(emulator, 0).openid)
    code = parse_qs(urlsplit(link).query)["code"][0]
    assert location(go(first, link)) == "/h5/pay"  # the code is traded once

    # The same code in a browser with a valid state of its own: WeChat answers 40163.
    other = requests.Session()
    state = parse_qs(urlsplit(start(base_url, other)).query)["state"][0]
    reused = go(other, f"{base_url}/h5/oauth/callback?{urlencode({'code': code, 'state': state})}")
    assert reused.status_code == 400 and "already used" in reused.text
    assert "h5_openid" not in session_of(app, other)

    # A code WeChat never issued: 40029, the same clear page.
    state = parse_qs(urlsplit(start(base_url, other)).query)["state"][0]
    unknown = go(other, f"{base_url}/h5/oauth/callback?{urlencode({'code': 'no-such-code', 'state': state})}")
    assert unknown.status_code == 400 and "invalid" in unknown.text
    assert "h5_openid" not in session_of(app, other)

    # The first browser reopening its link: its state was spent with the code.
    assert go(first, link).status_code == 400
    assert session_of(app, first)["h5_openid"] == shopper(emulator, 0).openid


def test_a_forged_state_is_refused_and_the_attackers_code_is_not_used(app, base_url, emulator):
    """Login CSRF: an attacker's own callback link (their code, their state) opened in the
    victim's browser must not sign the victim in as the attacker."""
    attacker = requests.Session()
    attackers_link = callback_url(base_url, attacker, shopper(emulator, 2).openid)
    victim = requests.Session()
    start(base_url, victim)  # the victim is mid-flow: a state of their own in their session
    refused = go(victim, attackers_link)
    assert refused.status_code == 400 and "授权已失效" in refused.text
    assert "h5_openid" not in session_of(app, victim)
    # A browser that never started the flow is refused too.
    stranger = requests.Session()
    assert go(stranger, attackers_link).status_code == 400
    # The state was checked before the code was traded: the attacker's own flow still works.
    assert location(go(attacker, attackers_link)) == "/h5/pay"
    assert session_of(app, attacker)["h5_openid"] == shopper(emulator, 2).openid


@pytest.mark.parametrize("target", ["https://evil.example/steal", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "h5/pay"])
def test_next_is_only_ever_a_local_path(app, base_url, emulator, target):
    http = requests.Session()
    landed = location(go(http, callback_url(base_url, http, shopper(emulator).openid, next_path=target)))
    assert landed == "/h5/pay"


# -- pay ---------------------------------------------------------------------------------------------

@pytest.fixture
def separate_mp_app(app):
    """A mini-program app of its own (as in production), so "the OA's appid" is told apart from
    the mini-program's: the demo's emulator plays a single app for both."""
    settings = app.extensions["wx"].settings
    before = (settings.WECHAT_MP_APPID, settings.WECHAT_MP_SECRET)
    object.__setattr__(settings, "WECHAT_MP_APPID", "wx0123456789abcdef")
    object.__setattr__(settings, "WECHAT_MP_SECRET", "another-app-secret")
    yield settings.mp_appid
    object.__setattr__(settings, "WECHAT_MP_APPID", before[0])
    object.__setattr__(settings, "WECHAT_MP_SECRET", before[1])


def test_the_pay_page_order_is_a_jsapi_order_with_the_oa_appid_and_pays_once_with_points(
        app, base_url, emulator, separate_mp_app):
    buyer = shopper(emulator)
    member_id = make_member(app, oa_openid=buyer.openid)
    http = sign_in(base_url, buyer.openid, "/h5/pay?amount_fen=12800&counter=cosmetics-l2")
    csrf = csrf_of(base_url, http, "?amount_fen=12800&counter=cosmetics-l2")
    made = new_order(base_url, http, csrf, {"amount_fen": 12_800, "description": "专柜 · 口红",
                                            "counter": "cosmetics-l2"})
    assert made.status_code == 201, made.text
    order, params = made.json()["order"], made.json()["pay_params"]
    assert (order["state"], order["paid"], order["amount_fen"]) == ("CREATED", False, 12_800)

    # getBrandWCPayRequest's parameters: the OA's appId, paySign by the merchant over §10.7's string.
    oa_appid = app.extensions["wx"].settings.WECHAT_APPID
    assert oa_appid != separate_mp_app
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == oa_appid and params["signType"] == "RSA"
    public_key = app.extensions["wx_pay"].signer.private_key.public_key()
    message = build_pay_sign_message(oa_appid, params["timeStamp"], params["nonceStr"], params["package"])
    assert message == f"{oa_appid}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    verify_signature(public_key, message, params["paySign"])
    with pytest.raises(SignatureInvalid):
        verify_signature(public_key, message.replace(b"prepay_id=", b"prepay_id=x"), params["paySign"])

    at_wechat_order = emu_order(base_url, order["out_trade_no"])
    assert (at_wechat_order["appid"], at_wechat_order["trade_type"]) == (oa_appid, "JSAPI")
    with uow(app) as session:
        row = session.scalar(select(Order).where(Order.out_trade_no == order["out_trade_no"]))
        assert (row.kind, row.appid, row.payer_openid, row.member_id, row.counter) == \
            ("jsapi", oa_appid, buyer.openid, member_id, "cosmetics-l2")
        assert params["package"] == f"prepay_id={row.prepay_id}"
        prepay_id = row.prepay_id

    # Only the buyer's phone can pay this prepay; then the notification lands and points come once.
    pay = f"{base_url}/_emulator/pay/control/pay"
    assert requests.post(pay, json={"prepay_id": prepay_id, "openid": shopper(emulator, 1).openid},
                         timeout=TIMEOUT).status_code == 409
    assert requests.post(pay, json={"prepay_id": prepay_id, "openid": buyer.openid}, timeout=TIMEOUT).status_code == 200
    deadline = time.monotonic() + TIMEOUT
    while (seen := order_view(base_url, http, order["out_trade_no"]).json()["order"])["state"] != "PAID":
        assert time.monotonic() < deadline, "the payment notification never landed"
        time.sleep(0.1)
    assert seen["paid"] and seen["paid_at"] and seen["points_awarded"] > 0
    assert requests.post(pay, json={"prepay_id": prepay_id, "openid": buyer.openid}, timeout=TIMEOUT).status_code == 409
    earned = [e for e in entries(app, member_id) if e.delta > 0]
    assert [e.delta for e in earned] == [seen["points_awarded"]]


def test_only_the_buyer_sees_the_order(app, base_url, emulator):
    buyer = sign_in(base_url, shopper(emulator, 0).openid)
    made = new_order(base_url, buyer, csrf_of(base_url, buyer), {"amount_fen": 100, "description": "咖啡"})
    assert made.status_code == 201, made.text
    no = made.json()["order"]["out_trade_no"]
    assert order_view(base_url, buyer, no).status_code == 200
    other = sign_in(base_url, shopper(emulator, 1).openid)
    hidden = order_view(base_url, other, no)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    assert order_view(base_url, buyer, "J" + "0" * 24).status_code == 404
    assert order_view(base_url, requests.Session(), no).status_code == 401


def test_writes_need_the_session_and_the_pages_csrf_token(app, base_url, emulator):
    http = sign_in(base_url, shopper(emulator).openid)
    body = {"amount_fen": 100, "description": "咖啡"}
    assert new_order(base_url, http, None, body).status_code == 403
    assert new_order(base_url, http, "not-the-token", body).status_code == 403
    csrf = csrf_of(base_url, http)
    stranger = requests.Session()
    refused = new_order(base_url, stranger, csrf, body)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert orders_in_db(app) == []


@pytest.mark.parametrize("body", [{"amount_fen": 0, "description": "x"}, {"amount_fen": 1.5, "description": "x"},
                                  {"amount_fen": "100", "description": "x"}, {"amount_fen": True},
                                  {"amount_fen": 5_000_001}, {"amount_fen": 100, "description": "  "},
                                  {"amount_fen": 100, "description": "x" * 128},
                                  {"amount_fen": 100, "counter": "../etc"}, [1, 2]])
def test_a_bad_body_is_400_and_creates_nothing(app, base_url, emulator, body):
    http = sign_in(base_url, shopper(emulator).openid)
    response = new_order(base_url, http, csrf_of(base_url, http), body)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert orders_in_db(app) == []
    assert requests.get(f"{base_url}/_emulator/pay/control/state", timeout=TIMEOUT).json()["orders"] == []


@pytest.mark.parametrize("query", ["?amount_fen=0", "?amount_fen=12.8", "?amount_fen=-5", "?counter=a/b"])
def test_a_bad_counter_link_is_a_400_page(app, base_url, emulator, query):
    http = sign_in(base_url, shopper(emulator).openid)
    response = go(http, f"{base_url}/h5/pay{query}")
    assert response.status_code == 400 and "链接有误" in response.text


def test_a_code_older_than_five_minutes_is_refused(app, base_url, emulator):
    http = requests.Session()
    link = callback_url(base_url, http, shopper(emulator).openid)
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 301}, timeout=TIMEOUT)
    expired = go(http, link)
    assert expired.status_code == 400 and "invalid" in expired.text
    assert "h5_openid" not in session_of(app, http)


def test_wechat_failing_the_exchange_is_a_502_page_not_a_500(app, base_url, emulator):
    http = requests.Session()
    link = callback_url(base_url, http, shopper(emulator).openid)
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "sns/oauth2/access_token", "errcode": -1},
                  timeout=TIMEOUT)
    failed = go(http, link)
    assert failed.status_code == 502 and "WeChat did not answer" in failed.text
    assert "h5_openid" not in session_of(app, http)


def test_logs_never_carry_the_full_openid(app, base_url, emulator, caplog):
    caplog.set_level(logging.INFO)
    buyer = shopper(emulator)
    http = sign_in(base_url, buyer.openid)
    made = new_order(base_url, http, csrf_of(base_url, http), {"amount_fen": 100, "description": "咖啡"})
    assert made.status_code == 201
    ours = [r for r in caplog.records if r.name == "wx_service.edges.h5"]
    assert len(ours) == 2  # signed in, order made
    for record in ours:
        assert buyer.openid not in record.getMessage() + repr(vars(record))
        assert record.openid == buyer.openid[:4] + "***" + buyer.openid[-4:]


# -- the page in a real browser ------------------------------------------------------------------------



@pytest.fixture
def browser():
    with headless_chromium("h5-pay", window="420,900") as driver:
        yield driver


@needs_chromium
def test_the_page_signs_in_takes_an_amount_and_shows_paid_with_points(app, base_url, emulator, browser):
    """Outside WeChat there is no WeixinJSBridge; with the emulator on, the page pays through the
    emulated phone instead, so the whole page (sign-in hops, yuan to fen, polling) runs for real."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    buyer = shopper(emulator)  # the emulator's authorize page picks the first shopper
    member_id = make_member(app, oa_openid=buyer.openid)
    browser.get(f"{base_url}/h5/pay?description=%E5%9B%B4%E5%B7%BE")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.ID, "amount"))
    assert urlsplit(browser.current_url).path == "/h5/pay"
    browser.find_element(By.ID, "amount").send_keys("abc")
    browser.find_element(By.ID, "pay-button").click()
    wait.until(lambda d: "请输入正确的金额" in d.find_element(By.ID, "status").text)
    assert orders_in_db(app) == []

    browser.find_element(By.ID, "amount").clear()
    browser.find_element(By.ID, "amount").send_keys("128.5")
    browser.find_element(By.ID, "pay-button").click()
    wait.until(lambda d: "已支付" in d.find_element(By.ID, "status").text)
    [order] = orders_in_db(app)
    assert (order.amount_fen, order.description, order.payer_openid, order.state) == \
        (12_850, "围巾", buyer.openid, "PAID")
    earned = [e.delta for e in entries(app, member_id) if e.delta > 0]
    assert len(earned) == 1 and f"积分 +{earned[0]}" in browser.find_element(By.ID, "status").text
