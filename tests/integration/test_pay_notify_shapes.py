"""Well-signed but malformed WeChat Pay notifications: a 400 that names the field, no traceback,
nothing changed; and the refusal's log line keeps the order and the notification it is about.

Regressions for two defects found by signing notifications independently: a `resource` that
was a JSON string, and a decrypted `amount` that was a string, both answered 500 with Flask's
HTML page (AttributeError: 'str' object has no attribute 'get'), so WeChat retried them for a
day; and the ERROR line for a refused amount named neither the order nor the notification.
"""
from __future__ import annotations

import json
import logging
import uuid

import pytest
from sqlalchemy import func, select

from payments.models import Order, PaymentTransaction, Refund
from payments.wxpay_v3 import encrypt_resource
from tests.integration.members_helpers import uow
from tests.integration.test_pay_notify import (  # noqa: F401 (fixtures)
    APIV3_KEY, keys, make_order, pay, refund_resource, send, transaction)
from wx_service.ground.logs import JsonFormatter, TextFormatter


def _body(resource_plaintext: str | None = None, *, resource: object = None, refund: bool = False,
          notification_id: str | None = None) -> bytes:
    """A notification whose decrypted resource is `resource_plaintext` exactly (any JSON, wrong
    types included), or whose `resource` field is `resource` itself."""
    if resource is None:
        resource = encrypt_resource(APIV3_KEY, resource_plaintext or "{}",
                                    associated_data="refund" if refund else "transaction",
                                    original_type="refund" if refund else "transaction")
    body = {"id": notification_id or str(uuid.uuid4()), "create_time": "2026-11-22T17:00:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "REFUND.SUCCESS" if refund else "TRANSACTION.SUCCESS",
            "summary": "支付成功", "resource": resource}
    return json.dumps(body, ensure_ascii=False).encode()


def _snapshot(app, out_trade_no: str) -> tuple:
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
        return (order.state, order.paid_at, order.payer_openid, order.needs_reconcile,
                session.scalar(select(func.count()).select_from(PaymentTransaction)),
                session.scalar(select(func.count()).select_from(Refund)))


def _no_traceback(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def _with(resource: dict, **changes) -> str:
    return json.dumps({**resource, **changes}, ensure_ascii=False)


CASES = {
    # (where the wrong type is, the resource's plaintext or None, the `resource` field itself)
    "resource is a JSON string": ("resource", None, json.dumps({"algorithm": "AEAD_AES_256_GCM"})),
    "resource is a list": ("resource", None, ["AEAD_AES_256_GCM"]),
    "amount is a string": ("amount", "amount", "10000"),
    "amount.total is a numeric string": ("amount.total", "amount", {"total": "10000", "currency": "CNY"}),
    "amount.total is true": ("amount.total", "amount", {"total": True}),
    "payer is a string": ("payer", "payer", "o-payer"),
    "payer.openid is a number": ("payer.openid", "payer", {"openid": 42}),
    "promotion_detail is an object": ("promotion_detail", "promotion_detail", {"coupon_id": "1"}),
    "out_trade_no is a number": ("out_trade_no", "out_trade_no", 20261122),
    "trade_state is missing": ("trade_state", "trade_state", ...),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_signed_payment_notification_of_the_wrong_shape_is_a_400_naming_the_field(
        app, base_url, keys, pay, caplog, case):
    field, key, value = CASES[case]
    out_trade_no = "NSHAPE" + uuid.uuid4().hex[:16]
    make_order(app, out_trade_no, 10000)
    before = _snapshot(app, out_trade_no)
    if field == "resource":
        body = _body(resource=value)
    else:
        resource = transaction(out_trade_no, 10000)
        if value is ...:
            del resource[key]
        else:
            resource[key] = value
        body = _body(json.dumps(resource, ensure_ascii=False))
    caplog.set_level(logging.INFO)

    res = send(base_url, keys, body)

    assert res.status_code == 400
    assert res.headers["Content-Type"].startswith("application/json")
    assert res.json()["code"] == "FAIL"
    assert res.json()["message"].startswith(f"malformed notification: {field}: ")
    assert _snapshot(app, out_trade_no) == before
    _no_traceback(caplog)
    # WeChat's retry of the same body gets the same answer, still changing nothing.
    assert send(base_url, keys, body).status_code == 400
    assert _snapshot(app, out_trade_no) == before


@pytest.mark.parametrize("key,value,field", [
    ("amount", "100", "amount"),
    ("amount", {"refund": "100", "total": 10000}, "amount.refund"),
    ("out_refund_no", None, "out_refund_no"),
])
def test_a_signed_refund_notification_of_the_wrong_shape_is_a_400_naming_the_field(
        app, base_url, keys, pay, caplog, key, value, field):
    out_trade_no = "NSHAPE" + uuid.uuid4().hex[:16]
    make_order(app, out_trade_no, 10000)
    assert send(base_url, keys, _body(json.dumps(transaction(out_trade_no, 10000)))).status_code == 204
    before = _snapshot(app, out_trade_no)
    resource = refund_resource(out_trade_no, "R" + out_trade_no, 10000, 100)
    resource[key] = value
    caplog.set_level(logging.INFO)

    res = send(base_url, keys, _body(json.dumps(resource), refund=True), path="/pay/refund-notify")

    assert res.status_code == 400
    assert res.json()["message"].startswith(f"malformed notification: {field}: ")
    assert _snapshot(app, out_trade_no) == before
    _no_traceback(caplog)


def test_a_body_that_is_not_json_or_nested_too_deep_is_a_400(app, base_url, keys, pay, caplog):
    caplog.set_level(logging.INFO)
    for body in (b"not json", b"[" * 60_000, b'{"resource": ' * 4_000 + b"1" + b"}" * 4_000, b"\xff\xfe"):
        res = send(base_url, keys, body)
        assert res.status_code == 400, body[:20]
        assert res.json()["message"].startswith("malformed notification: ")
    _no_traceback(caplog)


def test_the_refusal_of_a_wrong_amount_logs_the_order_and_the_notification(app, base_url, keys, pay, caplog):
    out_trade_no = "NSHAPE" + uuid.uuid4().hex[:16]
    make_order(app, out_trade_no, 10000)
    notification_id = "EV-" + uuid.uuid4().hex
    caplog.set_level(logging.INFO)

    res = send(base_url, keys, _body(json.dumps(transaction(out_trade_no, 1)), notification_id=notification_id))

    assert res.status_code == 400
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "amount 1 differs from the order's 10000 fen" in record.getMessage()
    text = TextFormatter().format(record)
    assert f"out_trade_no={out_trade_no}" in text and f"notification_id={notification_id}" in text
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["out_trade_no"], entry["notification_id"]) == (out_trade_no, notification_id)
