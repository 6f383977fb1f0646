"""The store counter's Native (QR) flow: place an order at WeChat, show its code_url, cancel it.

Why three short units of work instead of one: the call to WeChat can take seconds (or time out),
and it must never run inside a transaction that holds the order's row lock or the SQLite write
lock, or every notification and every other till would queue behind it. So the order is created
and committed first (CREATED, no code_url), WeChat is asked with that committed out_trade_no, and
a second unit of work stores the answer. What WeChat's answer means:

* a code_url: stored; the counter page shows it as a QR;
* a definite refusal (4xx such as PARAM_ERROR): the order never existed at WeChat, so it is closed
  here (Event.CLOSE_OK) and staff see WeChat's message (`WechatRefused`);
* no answer, a 5xx or an answer we cannot verify: the order may or may not exist at WeChat. It
  stays CREATED without code_url (the expiry/query jobs end it) and staff are asked to try again
  (`OutcomeUnknown`). Never retried here with a new out_trade_no: that could charge twice.

Flush-never-commit does not apply to these functions: they are use cases that own their units of
work (like a job), because the network call must sit between two commits. Call them from the edge.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from members import audit, ledger
from payments import money, service, states
from payments.config import current_payment_config
from payments.exceptions import VerificationFailed
from payments.gateway import WxPayApiError
from payments.models import Order
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, settings
from wx_service.ground.logs import mask_openid

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8))
MAX_AMOUNT_FEN = 5_000_000  # 50,000 yuan: above this a till is more likely mistyped than sold
_YUAN = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?")
_COUNTER = re.compile(r"[\w\-]{1,32}")


class CounterError(Exception):
    """A refusal to show to staff as it is (`message`), with the HTTP status that fits it."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadAmount(CounterError):
    pass


class UnknownOrder(CounterError):
    status = 404


class WechatRefused(CounterError):
    """WeChat definitely refused the order; it was closed here."""

    status = 502

    def __init__(self, message: str, out_trade_no: str, code: str) -> None:
        super().__init__(message)
        self.out_trade_no, self.code = out_trade_no, code


class CloseRefused(CounterError):
    """WeChat will not close the order and does not say it is paid: a person must look."""

    status = 409

    def __init__(self, message: str, out_trade_no: str) -> None:
        super().__init__(message)
        self.out_trade_no = out_trade_no


class OutcomeUnknown(CounterError):
    """WeChat did not answer clearly: the order stays CREATED until the jobs settle it."""

    status = 503

    def __init__(self, message: str, out_trade_no: str) -> None:
        super().__init__(message)
        self.out_trade_no = out_trade_no


# -- input -----------------------------------------------------------------------------------------

def parse_yuan(text: Any, *, max_fen: int = MAX_AMOUNT_FEN) -> int:
    """'128.00' -> 12800 fen, exactly (payments.money). Positive, at most 2 decimals, capped."""
    try:
        return money.parse_yuan(text, max_fen=max_fen)
    except money.AmountError as exc:
        raise BadAmount(str(exc)) from None


def check_counter(counter: Any) -> str:
    """A counter id such as '1F-cosmetics': letters, digits, '_' or '-', 1-32 characters."""
    if not isinstance(counter, str) or not _COUNTER.fullmatch(counter.strip()):
        raise CounterError("counter is 1-32 letters, digits, '_' or '-' (e.g. 1F-cosmetics)")
    return counter.strip()


def new_out_trade_no(prefix: str = "N") -> str:
    """prefix + Beijing yyyymmddHHMMSS + 10 random digits (25 characters with a 1-letter prefix)."""
    return money.new_number(prefix)


# -- placing an order at WeChat (shared with payments.jsapi) -----------------------------------------

def place_at_wechat(out_trade_no: str, call: Callable[[], str], store: Callable[[Order, str], None]) -> Order:
    """Run `call` (the gateway request, outside any transaction), then `store` its answer on the
    locked order in a new unit of work. Refusals close the order; unknown outcomes leave it."""
    try:
        answer = call()
    except WxPayApiError as exc:
        if exc.retryable or exc.code == "BAD_RESPONSE":
            log.warning("order placement outcome unknown", extra={"out_trade_no": out_trade_no,
                                                                  "code": exc.code})
            raise OutcomeUnknown("WeChat Pay did not answer in time; please try again "
                                 "(微信支付未及时响应，请重试)", out_trade_no) from None
        with db.unit_of_work():
            order = service.lock_order(out_trade_no)
            if order is not None:
                transition = states.apply(order.state, states.Event.CLOSE_OK)
                if transition.changed:
                    order.state = transition.new_state.value
                    order.closed_at = utcnow()
        log.warning("order refused by WeChat Pay", extra={"out_trade_no": out_trade_no, "code": exc.code})
        raise WechatRefused(f"WeChat Pay refused the order: {exc.code} {exc.message}".strip(),
                            out_trade_no, exc.code) from None
    except VerificationFailed:
        log.error("order placement answer failed verification", extra={"out_trade_no": out_trade_no})
        raise OutcomeUnknown("WeChat Pay's answer could not be verified; please try again",
                             out_trade_no) from None
    with db.unit_of_work():
        order = service.lock_order(out_trade_no)
        assert order is not None
        store(order, answer)
        return order


# -- the Native flow -------------------------------------------------------------------------------

def open_native_order(amount_fen: int, counter: str, staff_id: int | None, description: str,
                      source: str = "") -> Order:
    """Create a Native order for a counter and get its code_url from WeChat (see the module doc).

    Raises WechatRefused (order closed) or OutcomeUnknown (order left CREATED); PaymentsOff when
    payments are not configured."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_AMOUNT_FEN:
        raise BadAmount(f"amount must be 1 to {MAX_AMOUNT_FEN} fen")
    counter = check_counter(counter)
    description = (description or "").strip()[:127] or f"{counter} 消费"
    config = current_payment_config()
    appid = settings().WECHAT_APPID
    expires_at = utcnow() + timedelta(minutes=config.order_ttl_minutes)
    out_trade_no = new_out_trade_no("N")
    with db.unit_of_work():
        order = service.create_order(out_trade_no, "native", amount_fen, appid, description=description,
                                     expires_at=expires_at)
        order.counter = counter
        order.staff_id = staff_id
        order.source = (source or "")[:64]
        audit.record(staff_id, "order.create", f"order:{out_trade_no}",
                     after={"kind": "native", "amount_fen": amount_fen, "counter": counter, "state": order.state,
                            "source": order.source})
    gateway = config.gateway(appid)

    def store(order: Order, code_url: str) -> None:
        order.code_url = code_url

    return place_at_wechat(out_trade_no, lambda: gateway.native(
        out_trade_no, description, amount_fen, config.notify_url, time_expire=expires_at), store)


def _get_native(out_trade_no: str) -> Order:
    order = service.get_order(out_trade_no) if isinstance(out_trade_no, str) else None
    if order is None or order.kind != "native":
        raise UnknownOrder("no such counter order")
    return order


def points_awarded(order: Order) -> int | None:
    """The points the payer's member got for this order, if any."""
    if order.points_member_id is None:
        return None
    entry = ledger.find_entry(f"payment:{order.out_trade_no}")
    return entry.delta if entry is not None else None


def iso_utc(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _local(value: datetime | None) -> str | None:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def view(order: Order) -> dict[str, Any]:
    """The order as the counter page shows it: UTC ISO times plus their Beijing wall-clock text."""
    now = utcnow()
    unpaid = states.State(order.state) in states.UNPAID
    expired = bool(unpaid and order.expires_at is not None and order.expires_at <= now)
    return {
        "out_trade_no": order.out_trade_no, "state": order.state, "kind": order.kind,
        "amount_fen": order.amount_fen, "amount_yuan": f"{order.amount_fen // 100}.{order.amount_fen % 100:02d}",
        "description": order.description, "counter": order.counter,
        "code_url": order.code_url if unpaid and not expired else None,
        "created_at": iso_utc(order.created_at), "created_local": _local(order.created_at),
        "expires_at": iso_utc(order.expires_at),
        "seconds_left": max(0, int((order.expires_at - now).total_seconds())) if unpaid and order.expires_at else 0,
        "expired": expired,
        "paid_at": iso_utc(order.paid_at), "paid_local": _local(order.paid_at),
        "payer": mask_openid(order.payer_openid) if states.State(order.state) in states.PAID_FAMILY else None,
        "points_awarded": points_awarded(order),
        "needs_reconcile": order.needs_reconcile,
    }


def order_view(out_trade_no: str) -> dict[str, Any]:
    """What the counter page polls: state, amount, code_url (while payable), paid_at, payer masked,
    points awarded to a member payer."""
    with db.unit_of_work():
        return view(_get_native(out_trade_no))


def recent_orders(counter: str, limit: int = 10) -> list[dict[str, Any]]:
    """The counter's latest Native orders, newest first."""
    counter = check_counter(counter)
    with db.unit_of_work() as session:
        rows = session.scalars(select(Order).where(Order.counter == counter, Order.kind == "native")
                               .order_by(Order.created_at.desc(), Order.id.desc()).limit(limit))
        return [view(o) for o in rows]


def cancel(out_trade_no: str, staff_id: int | None = None) -> dict[str, Any]:
    """Staff cancels an unpaid QR: close it at WeChat, then close it here under the order lock.

    The close itself is payments.jobs.close_order (the same rules the expiry sweep uses): if WeChat
    says the order was paid meanwhile (close refused, the query answers SUCCESS), the payment is
    applied instead, exactly as its notification would be (points once), and the answer says PAID.
    Raises OutcomeUnknown when WeChat gives no definite answer (nothing changes; staff try again),
    CloseRefused when WeChat will not close it for another reason (flagged for reconciliation)."""
    from payments import jobs  # the jobs module imports the queue helpers; keep this module light

    with db.unit_of_work():
        order = _get_native(out_trade_no)
        if states.State(order.state) not in states.UNPAID:
            return view(order)
        before = order.state
    try:
        with db.unit_of_work():
            state = jobs.close_order(out_trade_no)
            if state != before:  # audited with the close it describes (paid meanwhile: that is what it did)
                audit.record(staff_id, "order.cancel", f"order:{out_trade_no}", before={"state": before},
                             after={"state": state})
    except jobs.RetryLater:
        log.warning("cancel not confirmed by WeChat Pay", extra={"out_trade_no": out_trade_no})
        raise OutcomeUnknown("WeChat Pay did not confirm the cancel; the QR is not cancelled yet, "
                             "try again in a moment (微信支付未确认关闭，请稍后重试)", out_trade_no) from None
    if states.State(state) in states.UNPAID:
        raise CloseRefused("WeChat Pay refused to close this order; it is flagged for the daily "
                           "reconciliation, do not take payment for it again", out_trade_no)
    return order_view(out_trade_no)
