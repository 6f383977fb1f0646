"""The emulated WeChat Pay's order and refund book-keeping: the views WeChat returns, and the
shopper finishing a payment code (paid, abandoned, or auto-revoked at 45 s). No routes here;
pay_api.py (WeChat's endpoints) and pay_control.py (the shopper and test set-up) share it."""
from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from flask import current_app

from wx_service.edges.emulator.pay_notifications import notify
from wx_service.edges.emulator.pay_state import SHANGHAI, PayEmulatorState


def _emu():
    return current_app.extensions["wx_emulator"]


def _pay() -> PayEmulatorState:
    return _emu().pay


def _now_text(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, SHANGHAI).isoformat(timespec="seconds")




# --- orders ------------------------------------------------------------------------------------


def _key(mchid: str, out_trade_no: str) -> str:
    return f"{mchid}/{out_trade_no}"


def _transaction(order: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "appid": order["appid"], "mchid": order["mchid"], "out_trade_no": order["out_trade_no"],
        "trade_type": order["trade_type"], "trade_state": order["trade_state"],
        "trade_state_desc": order.get("trade_state_desc", ""), "attach": order.get("attach", ""),
        "amount": {"total": order["amount"], "currency": "CNY", "payer_currency": "CNY"},
    }
    if order.get("transaction_id"):
        result.update(transaction_id=order["transaction_id"], bank_type="OTHERS",
                      success_time=_now_text(order["paid_at"]),
                      payer={"openid": order["openid"]})
        result["amount"]["payer_total"] = order["amount"]
    return result


def _settle_code(state, order: dict[str, Any]) -> None:
    """A payment-code order whose shopper has finished typing: paid, or abandoned."""
    if order["trade_type"] != "MICROPAY" or order["trade_state"] != "USERPAYING":
        return
    now = time.time()
    if now < order["paying_until"]:
        if now >= order["created_at"] + state.pay.codepay_auto_revoke_seconds:
            order.update(trade_state="REVOKED", trade_state_desc="超时未支付，已自动撤销")
        return
    if order["outcome"] != "pay" and now >= order["created_at"] + state.pay.codepay_auto_revoke_seconds:
        order.update(trade_state="REVOKED", trade_state_desc="超时未支付，已自动撤销")
        return
    if order["outcome"] == "pay":
        _mark_paid(state, order)
    else:
        order["abandoned"] = True


def _mark_paid(state, order: dict[str, Any], openid: str | None = None) -> None:
    if order["trade_state"] not in ("NOTPAY", "USERPAYING"):
        return
    order.update(trade_state="SUCCESS", trade_state_desc="支付成功", paid_at=time.time(),
                 transaction_id="4200" + "".join(str(secrets.randbelow(10)) for _ in range(24)),
                 openid=openid or order.get("openid") or "oEmuPayer" + secrets.token_hex(8))
    if order.get("notify_url"):
        notify(state, order["mchid"], order["notify_url"], "TRANSACTION.SUCCESS", "支付成功",
                "transaction", _transaction(order))


def _order(mchid: str, out_trade_no: str) -> dict[str, Any] | None:
    state = _emu()
    order = state.pay.orders.get(_key(mchid, out_trade_no))
    if order is not None:
        _settle_code(state, order)
    return order



def _settle_later(state, key: str) -> None:
    with state.lock:
        order = state.pay.orders.get(key)
        if order is not None:
            _settle_code(state, order)



# --- refunds -----------------------------------------------------------------------------------


def _refund_view(refund: dict[str, Any]) -> dict[str, Any]:
    view = {k: refund[k] for k in ("refund_id", "out_refund_no", "transaction_id", "out_trade_no",
                                   "channel", "user_received_account", "create_time", "status",
                                   "funds_account")}
    if refund.get("success_time"):
        view["success_time"] = refund["success_time"]
    view["amount"] = {"total": refund["total"], "refund": refund["refund"],
                      "payer_total": refund["total"], "payer_refund": refund["refund"],
                      "settlement_refund": refund["refund"], "settlement_total": refund["total"],
                      "discount_refund": 0, "currency": "CNY"}
    return view



def _settle_refund(state, key: str, generation: int) -> None:
    with state.lock:
        if state.pay.generation != generation:
            return
        refund_row = state.pay.refunds.get(key)
        if refund_row is None or refund_row["status"] != "PROCESSING":
            return
        refund_row.update(status="SUCCESS", success_time=_now_text(), succeeded_at=time.time())
        if refund_row.get("notify_url"):
            view = _refund_view(refund_row)
            # The notification's resource (wechatpay-java RefundNotification): refund_status.
            resource = {"mchid": refund_row["mchid"], **{k: v for k, v in view.items() if k != "status"},
                        "refund_status": view["status"]}
            notify(state, refund_row["mchid"], refund_row["notify_url"], "REFUND.SUCCESS", "退款成功",
                    "refund", resource)

