"""WeChat Pay notifications end to end: signed and encrypted as WeChat does, sent over HTTP.

A test RSA key pair plays WeChat Pay's platform key (public-key mode), a test APIv3 key
encrypts the resources; the app's payment configuration is built from settings pointing at
these files and swapped in for each test (the session app runs with the demo merchant).
"""
from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from config import load_settings
from members.models import PointsEntry
from payments import service
from payments.config import load_payment_config
from payments.models import Order, PaymentTransaction, Refund
from payments.wxpay_v3 import build_verify_message, encrypt_resource
from tests.conftest import _test_env
from tests.integration.members_helpers import assert_ledger_consistent, balance, make_member, uow

MCHID = "1900000109"
APIV3_KEY = b"0123456789abcdefghijKLMNOPQRSTUV"
PUB_KEY_ID = "PUB_KEY_ID_0000000000000024101100397200000006"
MP_APPID = "wx1234567890abcdef"


def _pem_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wxpay")
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "apiv3.key").write_bytes(APIV3_KEY + b"\n")
    (folder / "merchant.pem").write_bytes(_pem_private(merchant))
    (folder / "wechatpay_pub.pem").write_bytes(platform.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"platform": platform, "folder": folder,
            "intruder": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture
def pay(app, keys, monkeypatch):
    folder = keys["folder"]
    settings = load_settings(_test_env(), DATABASE_URL=app.extensions["wx"].settings.DATABASE_URL,
                             WXPAY_MCHID=MCHID, WXPAY_APIV3_KEY_FILE=str(folder / "apiv3.key"),
                             WXPAY_CERT_SERIAL="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
                             WXPAY_PRIVATE_KEY_FILE=str(folder / "merchant.pem"),
                             WXPAY_PUBLIC_KEY_FILE=str(folder / "wechatpay_pub.pem"),
                             WXPAY_PUBLIC_KEY_ID=PUB_KEY_ID,
                             WXPAY_NOTIFY_URL_BASE="https://store.example.com")
    config = load_payment_config(settings)
    monkeypatch.setitem(app.extensions, "wx_pay", config)
    return config


# -- building notifications as WeChat does ---------------------------------------------------------

def transaction(out_trade_no: str, total: int, *, trade_state: str = "SUCCESS", openid: str = "o-payer",
                mchid: str = MCHID, appid: str = MP_APPID, currency: str = "CNY") -> dict:
    return {"appid": appid, "mchid": mchid, "out_trade_no": out_trade_no,
            "transaction_id": "42000" + uuid.uuid4().hex[:20], "trade_type": "JSAPI",
            "trade_state": trade_state, "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "attach": "", "success_time": "2026-11-22T17:00:00+08:00", "payer": {"openid": openid},
            "amount": {"total": total, "payer_total": total, "currency": currency, "payer_currency": currency}}


def refund_resource(out_trade_no: str, out_refund_no: str, total: int, refund: int,
                    status: str = "SUCCESS") -> dict:
    return {"mchid": MCHID, "out_trade_no": out_trade_no, "transaction_id": "42000" + out_trade_no[-10:],
            "out_refund_no": out_refund_no, "refund_id": "50300" + uuid.uuid4().hex[:20],
            "refund_status": status, "success_time": "2026-11-22T18:00:00+08:00",
            "user_received_account": "支付用户零钱",
            "amount": {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund}}


def envelope(resource: dict, notification_id: str | None = None, *, refund: bool = False) -> bytes:
    event_type = f"REFUND.{resource['refund_status']}" if refund else "TRANSACTION.SUCCESS"
    body = {"id": notification_id or str(uuid.uuid4()), "create_time": "2026-11-22T17:00:01+08:00",
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
            "resource": encrypt_resource(APIV3_KEY, json.dumps(resource, ensure_ascii=False),
                                         associated_data="transaction" if not refund else "refund",
                                         original_type="refund" if refund else "transaction")}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(key, body: bytes, *, timestamp: int | None = None, serial: str = PUB_KEY_ID) -> dict:
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = uuid.uuid4().hex
    signature = key.sign(build_verify_message(ts, nonce, body), padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": str(ts), "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json"}


def send(base_url: str, keys, body: bytes, path: str = "/pay/notify", session=None, **kw) -> requests.Response:
    return (session or requests).post(base_url + path, data=body, headers=signed_headers(keys["platform"], body, **kw),
                                      timeout=30)


def make_order(app, out_trade_no: str, amount_fen: int, *, member_id: int | None = None) -> None:
    with uow(app):
        service.create_order(out_trade_no, "jsapi", amount_fen, MP_APPID, description="test",
                             member_id=member_id)


def make_shopper(app, openid: str) -> int:
    from members.models import MemberIdentity

    member_id = make_member(app)
    with uow(app) as session:
        session.add(MemberIdentity(member_id=member_id, kind="mp", openid=openid))
    return member_id


def order_row(app, out_trade_no: str) -> Order:
    with uow(app) as session:
        return session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))


def payment_entries(app, out_trade_no: str) -> list[PointsEntry]:
    with uow(app) as session:
        return list(session.scalars(select(PointsEntry).where(PointsEntry.ref_key == out_trade_no)
                                    .order_by(PointsEntry.id)))


def count(app, model) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(model))


# -- tests -----------------------------------------------------------------------------------------

def test_payments_off_the_endpoints_answer_503(app, base_url, monkeypatch):
    monkeypatch.setitem(app.extensions, "wx_pay", None)  # every WXPAY_* setting empty
    response = requests.post(f"{base_url}/pay/notify", data=b"{}", timeout=5)
    assert response.status_code == 503
    assert response.json()["code"] == "FAIL"


def test_a_valid_notification_pays_the_order_and_awards_points_once(app, base_url, pay, keys):
    member_id = make_shopper(app, "o-alice")
    make_order(app, "T20261122000001", 12_800)
    body = envelope(transaction("T20261122000001", 12_800, openid="o-alice"), "EV-1")
    assert send(base_url, keys, body).status_code == 204
    order = order_row(app, "T20261122000001")
    assert order.state == "PAID" and order.payer_openid == "o-alice" and order.transaction_id
    assert order.points_member_id == member_id and order.paid_at is not None
    awarded = payment_entries(app, "T20261122000001")
    assert len(awarded) == 1 and awarded[0].delta > 0
    # WeChat's retry (same id) and a late copy under another id change nothing.
    assert send(base_url, keys, body).status_code == 204
    again = envelope(transaction("T20261122000001", 12_800, openid="o-alice"), "EV-2")
    assert send(base_url, keys, again).status_code == 204
    assert len(payment_entries(app, "T20261122000001")) == 1
    assert count(app, PaymentTransaction) == 2  # one row per distinct notification id
    assert balance(app, member_id) == awarded[0].delta
    assert_ledger_consistent(app, member_id)


def test_a_payer_who_is_not_a_member_pays_without_points(app, base_url, pay, keys):
    make_order(app, "T-nomember", 500)
    assert send(base_url, keys, envelope(transaction("T-nomember", 500, openid="o-stranger"))).status_code == 204
    order = order_row(app, "T-nomember")
    assert order.state == "PAID" and order.points_member_id is None
    assert count(app, PointsEntry) == 0


def test_200_orders_notified_15_times_each_some_concurrently_are_paid_and_awarded_once(app, base_url, pay, keys):
    members = [make_shopper(app, f"o-shopper-{i}") for i in range(20)]
    orders = [(f"T-bulk-{i:04d}", 100 + i * 7, f"o-shopper-{i % 20}") for i in range(200)]
    with uow(app):
        for out_trade_no, amount, _ in orders:
            service.create_order(out_trade_no, "jsapi", amount, MP_APPID)
    sends: list[bytes] = []
    for out_trade_no, amount, openid in orders:
        retry = envelope(transaction(out_trade_no, amount, openid=openid), f"EV-{out_trade_no}")
        sends += [retry] * 12  # WeChat's retries of one notification
        sends += [envelope(transaction(out_trade_no, amount, openid=openid)) for _ in range(3)]  # copies
    random.Random(7).shuffle(sends)
    statuses: list[int] = []
    lock = threading.Lock()
    local = threading.local()

    def deliver(body: bytes) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        for _attempt in range(4):  # WeChat retries anything but 2xx
            status = send(base_url, keys, body, session=session).status_code
            if status < 500:
                break
        with lock:
            statuses.append(status)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(deliver, sends))
    elapsed = time.monotonic() - started
    print(f"\n3000 notifications in {elapsed:.1f} s ({3000 / elapsed:.0f}/s)")
    assert statuses.count(204) == len(sends) == 3000
    with uow(app) as session:
        states = dict(session.execute(select(Order.out_trade_no, Order.state)).all())
        assert set(states.values()) == {"PAID"}
        keys_ = list(session.scalars(select(PointsEntry.source_key).where(PointsEntry.reason == "payment")))
        assert len(keys_) == len(set(keys_)) == 200
        assert session.scalar(select(func.count()).select_from(PaymentTransaction)) == 200 * 4
    for member_id in members:
        assert_ledger_consistent(app, member_id)


def _tamper_body(body: bytes) -> bytes:
    return body.replace(b'"summary":"', b'"summary":"X', 1)


REFUSALS = {
    "tampered body": lambda keys, body: (_tamper_body(body), signed_headers(keys["platform"], body)),
    "wrong signature": lambda keys, body: (body, signed_headers(keys["intruder"], body)),
    "missing headers": lambda keys, body: (body, {k: v for k, v in signed_headers(keys["platform"], body).items()
                                                  if k != "Wechatpay-Signature"}),
    "stale timestamp": lambda keys, body: (body, signed_headers(keys["platform"], body,
                                                                timestamp=int(time.time()) - 301)),
    "probe": lambda keys, body: (body, {**signed_headers(keys["platform"], body),
                                        "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"}),
    "unknown serial": lambda keys, body: (body, signed_headers(keys["platform"], body,
                                                               serial="PUB_KEY_ID_0000000000000099")),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unauthenticated_notifications_are_refused_and_change_nothing(app, base_url, pay, keys, case):
    make_shopper(app, "o-bob")
    make_order(app, "T-forged", 1_000)
    body = envelope(transaction("T-forged", 1_000, openid="o-bob"))
    sent_body, headers = REFUSALS[case](keys, body)
    response = requests.post(f"{base_url}/pay/notify", data=sent_body, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == "FAIL"
    assert order_row(app, "T-forged").state == "CREATED"
    assert count(app, PaymentTransaction) == 0 and count(app, PointsEntry) == 0


@pytest.mark.parametrize("case", ["other mchid", "other appid", "amount differs", "currency differs",
                                  "unknown order", "wrong apiv3 key"])
def test_authentic_notifications_that_do_not_match_the_order_are_refused(app, base_url, pay, keys, case):
    make_shopper(app, "o-carol")
    make_order(app, "T-mismatch", 1_000)
    resource = {
        "other mchid": transaction("T-mismatch", 1_000, mchid="1900000999"),
        "other appid": transaction("T-mismatch", 1_000, appid="wxffffffffffffffff"),
        "amount differs": transaction("T-mismatch", 1, openid="o-carol"),
        "currency differs": transaction("T-mismatch", 1_000, currency="USD"),
        "unknown order": transaction("T-nosuch", 1_000),
        "wrong apiv3 key": transaction("T-mismatch", 1_000),
    }[case]
    body = envelope(resource)
    if case == "wrong apiv3 key":
        envelope_ = json.loads(body)
        envelope_["resource"] = encrypt_resource(b"X" * 32, json.dumps(resource))
        body = json.dumps(envelope_).encode()
    response = send(base_url, keys, body)
    assert response.status_code == 400 and response.json()["code"] == "FAIL"
    assert order_row(app, "T-mismatch").state == "CREATED"
    assert count(app, PaymentTransaction) == 0 and count(app, PointsEntry) == 0


def test_an_oversized_body_is_refused(app, base_url, pay, keys):
    body = b"{" + b" " * (70 * 1024) + b"}"
    assert send(base_url, keys, body).status_code == 413


def test_a_refund_notification_before_the_payment_one_pays_awards_and_reverses(app, base_url, pay, keys):
    member_id = make_member(app)
    make_order(app, "T-early-refund", 10_000, member_id=member_id)
    body = envelope(refund_resource("T-early-refund", "R-early-1", 10_000, 4_000), "EV-R1", refund=True)
    assert send(base_url, keys, body, path="/pay/refund-notify").status_code == 204
    order = order_row(app, "T-early-refund")
    assert order.state == "PARTIALLY_REFUNDED" and order.paid_at is not None
    entries = payment_entries(app, "T-early-refund")
    assert [e.reason for e in entries] == ["payment", "refund"]
    assert entries[1].delta == -(entries[0].delta * 4_000 // 10_000)
    # The payment notification arrives late: nothing more.
    assert send(base_url, keys, envelope(transaction("T-early-refund", 10_000))).status_code == 204
    assert send(base_url, keys, body, path="/pay/refund-notify").status_code == 204
    assert order_row(app, "T-early-refund").state == "PARTIALLY_REFUNDED"
    assert len(payment_entries(app, "T-early-refund")) == 2
    assert_ledger_consistent(app, member_id)


def test_partial_refunds_reverse_points_in_proportion_and_never_exceed_the_payment(app, base_url, pay, keys):
    member_id = make_shopper(app, "o-dave")
    make_order(app, "T-refunds", 10_000)
    assert send(base_url, keys, envelope(transaction("T-refunds", 10_000, openid="o-dave"))).status_code == 204
    awarded = payment_entries(app, "T-refunds")[0].delta
    with uow(app):
        refund, created = service.request_refund("T-refunds", "R-1", 3_000)
        assert created
    with uow(app):
        assert service.request_refund("T-refunds", "R-1", 3_000)[1] is False  # idempotent
        with pytest.raises(service.RefundRefused):
            service.request_refund("T-refunds", "R-too-much", 7_001)
        service.request_refund("T-refunds", "R-2", 7_000)
    r1 = envelope(refund_resource("T-refunds", "R-1", 10_000, 3_000), "EV-R-1", refund=True)
    assert send(base_url, keys, r1, path="/pay/refund-notify").status_code == 204
    assert send(base_url, keys, r1, path="/pay/refund-notify").status_code == 204
    assert order_row(app, "T-refunds").state == "PARTIALLY_REFUNDED"
    taken = [e.delta for e in payment_entries(app, "T-refunds") if e.reason == "refund"]
    assert taken == [-(awarded * 3_000 // 10_000)]
    # A refund notification claiming another amount for R-2 is refused.
    bad = envelope(refund_resource("T-refunds", "R-2", 10_000, 7_500), refund=True)
    assert send(base_url, keys, bad, path="/pay/refund-notify").status_code == 400
    r2 = envelope(refund_resource("T-refunds", "R-2", 10_000, 7_000), "EV-R-2", refund=True)
    assert send(base_url, keys, r2, path="/pay/refund-notify").status_code == 204
    assert order_row(app, "T-refunds").state == "REFUNDED"
    assert sum(e.delta for e in payment_entries(app, "T-refunds")) == 0
    with uow(app) as session:
        assert {r.status for r in session.scalars(select(Refund))} == {"SUCCESS"}
        with pytest.raises(service.RefundRefused):
            service.request_refund("T-refunds", "R-3", 1)
    assert assert_ledger_consistent(app, member_id) == 0


def test_a_refund_made_at_the_merchant_console_is_recorded(app, base_url, pay, keys):
    make_order(app, "T-console", 2_000)
    assert send(base_url, keys, envelope(transaction("T-console", 2_000))).status_code == 204
    body = envelope(refund_resource("T-console", "R-console", 2_000, 2_000), refund=True)
    assert send(base_url, keys, body, path="/pay/refund-notify").status_code == 204
    assert order_row(app, "T-console").state == "REFUNDED"


def test_database_down_answers_500_and_a_later_retry_succeeds(app, base_url, pay, keys, monkeypatch):
    member_id = make_shopper(app, "o-erin")
    make_order(app, "T-dbdown", 3_000)
    body = envelope(transaction("T-dbdown", 3_000, openid="o-erin"), "EV-dbdown")
    real = service.apply_payment_notification

    def down(*args, **kwargs):
        real(*args, **kwargs)  # the work is done, then the connection drops: it must not stick
        raise OperationalError("UPDATE pay_orders", {}, Exception("server closed the connection"))

    monkeypatch.setattr(service, "apply_payment_notification", down)
    response = send(base_url, keys, body)
    assert response.status_code == 500 and response.json()["code"] == "FAIL"
    assert order_row(app, "T-dbdown").state == "CREATED"
    assert count(app, PaymentTransaction) == 0 and count(app, PointsEntry) == 0
    monkeypatch.setattr(service, "apply_payment_notification", real)
    assert send(base_url, keys, body).status_code == 204
    assert order_row(app, "T-dbdown").state == "PAID"
    assert len(payment_entries(app, "T-dbdown")) == 1
    assert_ledger_consistent(app, member_id)
