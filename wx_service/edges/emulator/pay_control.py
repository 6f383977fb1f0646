"""Control endpoints of the WeChat Pay emulator (/_emulator/pay/control/…): register the merchant,
tune time, inject faults, rotate the platform certificate, and play the shopper (pay an order,
show a payment code). Described in pay_api.py's docstring. Not part of WeChat's API."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, jsonify

from payments.exceptions import WxPayError
from payments.wxpay_v3 import public_key_from_pem
from wx_service.edges.emulator.api import json_object
from wx_service.edges.emulator.pay_orders import (
    _emu,
    _mark_paid,
    _pay,
    _refund_view,
    _settle_code,
    _settle_refund,
    _transaction,
)
from wx_service.edges.emulator.pay_state import PayFault

bp = Blueprint("control", __name__, url_prefix="/control")

# --- control (the shopper, and test set-up) ------------------------------------------------------


def _control_body() -> dict[str, Any]:
    return json_object() or {}


@bp.post("/merchant")
def control_merchant():
    data = _control_body()
    try:
        key = public_key_from_pem(str(data["public_key"]))
        apiv3 = str(data["apiv3_key"]).encode()
        if len(apiv3) != 32:
            raise ValueError("apiv3_key must be 32 bytes")
        appids = data.get("appids") or [data["appid"]]
        if not isinstance(appids, list):
            raise ValueError("appids is a list")
        merchant = {"mchid": str(data["mchid"]), "appids": {str(a) for a in appids},
                    "serial_no": str(data["serial_no"]), "public_key": key, "apiv3_key": apiv3}
    except (KeyError, ValueError, WxPayError) as exc:
        return jsonify(error=str(exc)), 400
    with _emu().lock:
        _pay().merchants[merchant["mchid"]] = merchant
    return jsonify(ok=True, platform_serial=_pay().current.serial,
                   platform_certificate=_pay().current.pem.decode())


@bp.post("/config")
def control_config():
    data = _control_body()
    pay = _pay()
    with _emu().lock:
        if "notify_time_factor" in data:
            pay.notify_time_factor = float(data["notify_time_factor"])
        if "refund_settle_seconds" in data:
            pay.refund_settle_seconds = float(data["refund_settle_seconds"])
        if "codepay_auto_revoke_seconds" in data:
            pay.codepay_auto_revoke_seconds = float(data["codepay_auto_revoke_seconds"])
    return jsonify(notify_time_factor=pay.notify_time_factor,
                   refund_settle_seconds=pay.refund_settle_seconds,
                   codepay_auto_revoke_seconds=pay.codepay_auto_revoke_seconds)


@bp.post("/faults")
def control_faults():
    data = _control_body()
    fault = PayFault(api=str(data.get("api", "*")), status=data.get("status"),
                     code=str(data.get("code", "")), message=str(data.get("message", "")),
                     delay=float(data.get("delay", 0)), tamper=bool(data.get("tamper")),
                     unsigned=bool(data.get("unsigned")), extra=dict(data.get("extra") or {}),
                     times=int(data.get("times", 1)))
    with _emu().lock:
        _pay().faults.append(fault)
    return jsonify(ok=True)


@bp.post("/rotate-certificate")
def control_rotate():
    with _emu().lock:
        platform = _pay().rotate()
    return jsonify(serial=platform.serial)


@bp.post("/pay")
def control_pay():
    data = _control_body()
    with _emu().lock:
        for order in _pay().orders.values():
            if (data.get("out_trade_no") and order["out_trade_no"] == data["out_trade_no"]) or \
                    (data.get("code_url") and order.get("code_url") == data["code_url"]) or \
                    (data.get("prepay_id") and order.get("prepay_id") == data["prepay_id"]):
                if order["trade_state"] != "NOTPAY":
                    return jsonify(error=f"order is {order['trade_state']}"), 409
                openid = data.get("openid")
                if order["trade_type"] == "JSAPI" and openid and openid != order["openid"]:
                    return jsonify(error="this prepay belongs to another payer"), 409
                _mark_paid(_emu(), order, openid)
                return jsonify(_transaction(order))
    return jsonify(error="no such order"), 404


@bp.post("/settle-refund")
def control_settle_refund():
    """The bank finishes a PROCESSING refund now (SUCCESS, and its REFUND.SUCCESS notification),
    instead of after refund_settle_seconds: a test can look at PROCESSING first, for as long as it needs."""
    number = str(_control_body().get("out_refund_no") or "")
    with _emu().lock:
        key = next((k for k, r in _pay().refunds.items() if r["out_refund_no"] == number), None)
        generation = _pay().generation
        if key is None:
            return jsonify(error="no such refund"), 404
        if _pay().refunds[key]["status"] != "PROCESSING":
            return jsonify(error=f"refund is {_pay().refunds[key]['status']}"), 409
    _settle_refund(_emu(), key, generation)
    with _emu().lock:
        return jsonify(_refund_view(_pay().refunds[key]))


@bp.post("/payment-code")
def control_payment_code():
    data = _control_body()
    outcome = str(data.get("outcome", "pay"))
    if outcome not in ("pay", "give_up", "notenough"):
        return jsonify(error="outcome is pay, give_up or notenough"), 400
    code = str(10 + secrets.randbelow(6)) + "".join(str(secrets.randbelow(10)) for _ in range(16))
    with _emu().lock:
        _pay().codes[code] = {"openid": str(data.get("openid") or "oEmuPayer" + secrets.token_hex(8)),
                              "seconds": float(data.get("seconds", 0)), "outcome": outcome,
                              "used": False}
    return jsonify(auth_code=code)


@bp.get("/state")
def control_state():
    with _emu().lock:
        pay = _pay()
        for order in pay.orders.values():
            _settle_code(_emu(), order)
        return jsonify(
            orders=[_transaction(o) for o in pay.orders.values()],
            refunds=[_refund_view(r) for r in pay.refunds.values()],
            notifications=[{k: v for k, v in n.items() if k != "resource"} for n in pay.notifications],
            calls=pay.calls, platform_serials=[p.serial for p in pay.platform])

