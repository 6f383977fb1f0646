"""JSAPI prepay for the mini-program and the OA's own web pages (wx_service/h5.py): an order for
the signed-in buyer, then wx.requestPayment's / WeixinJSBridge's parameters. Same shape as the
counter's Native flow (payments.counter): the order is committed first, WeChat is called outside
any transaction, the prepay_id is stored in a second unit of work.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from payments import counter, service, states
from payments.config import current_payment_config
from payments.models import Order
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, settings

MP_COUNTER = "mp"  # Order.counter for orders paid in the mini-program
H5_COUNTER = "h5"  # Order.counter for orders paid on the OA's web pages without a counter of their own


def open_jsapi_order(amount_fen: int, description: str, payer_openid: str, member_id: int | None,
                     source: str = "", *, appid: str | None = None,
                     counter_id: str = MP_COUNTER) -> tuple[Order, dict[str, str]]:
    """Create the order (appid = the mini-program's unless given, e.g. the OA's for its web pages;
    payer = the openid under that app), get the prepay_id, and return the order with
    {appId, timeStamp, nonceStr, package, signType, paySign} (§10.7).

    Raises counter.WechatRefused (order closed) or counter.OutcomeUnknown (left CREATED)."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) \
            or not 0 < amount_fen <= counter.MAX_AMOUNT_FEN:
        raise counter.BadAmount(f"amount_fen must be 1 to {counter.MAX_AMOUNT_FEN}")
    description = (description or "").strip()
    if not 1 <= len(description) <= 127:
        raise counter.CounterError("description is 1-127 characters")
    config = current_payment_config()
    appid = appid or settings().mp_appid
    expires_at = utcnow() + timedelta(minutes=config.order_ttl_minutes)
    out_trade_no = counter.new_out_trade_no("J")
    with db.unit_of_work():
        order = service.create_order(out_trade_no, "jsapi", amount_fen, appid, description=description,
                                     member_id=member_id, payer_openid=payer_openid, expires_at=expires_at)
        order.counter = (counter_id or MP_COUNTER)[:32]
        order.source = (source or "")[:64]
    gateway = config.gateway(appid)

    def store(order: Order, prepay_id: str) -> None:
        order.prepay_id = prepay_id

    order = counter.place_at_wechat(out_trade_no, lambda: gateway.jsapi(
        out_trade_no, description, amount_fen, config.notify_url, payer_openid,
        time_expire=expires_at), store)
    return order, gateway.jsapi_pay_params(order.prepay_id)


def buyer_view(out_trade_no: str, payer_openid: str) -> dict[str, Any] | None:
    """The order as its buyer sees it; None when there is no such JSAPI order of this buyer (so
    another user's order number reveals nothing)."""
    with db.unit_of_work():
        order = service.get_order(out_trade_no)
        if order is None or order.kind != "jsapi" or order.payer_openid != payer_openid:
            return None
        state = states.State(order.state)
        return {
            "out_trade_no": order.out_trade_no, "state": order.state,
            "paid": state in states.PAID_FAMILY,
            "amount_fen": order.amount_fen, "description": order.description,
            "created_at": counter.iso_utc(order.created_at), "expires_at": counter.iso_utc(order.expires_at),
            "paid_at": counter.iso_utc(order.paid_at), "points_awarded": counter.points_awarded(order),
        }
