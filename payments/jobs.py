"""Background work that calls WeChat Pay: refunds, closing or reversing orders, and the sweeps
that find what WeChat's notifications did not tell us.

Every public function but `request_refund` is a job (plain keyword arguments, run by
wx_service.ground.queue.run_job inside one unit of work). The shape of each is the same:

  1. read what the call needs, then commit (`_release`): no transaction, and so no row lock, is
     held while WeChat is on the line (a slow answer must not block the notify endpoint);
  2. call WeChat;
  3. apply the answer under the order's row lock through payments.service / payments.states,
     which makes every effect (points awarded, points taken back) happen once whichever of the
     answer and the notification comes first.

A WeChat answer that may change if asked again (5xx, SYSTEM_ERROR, a timeout, an answer that
failed verification, recall=Y) raises RetryLater, whose `transient` tells the queue to retry the
same job, with the same out_trade_no / out_refund_no, so WeChat does the thing once. Definite
refusals are recorded where staff see them (needs_reconcile, the refund's status, a row in the
order's transactions) and are not retried.

The sweeps claim a bounded batch by stamping `checked_at` with a conditional UPDATE, so two
schedulers (or a sweep run twice) never work on the same order within RECHECK_AFTER.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import or_, select, update

from members import audit
from payments import money, service, states
from payments import refunds as rules
from payments.config import PaymentConfig, current_payment_config
from payments.exceptions import WxPayError
from payments.gateway import WechatPayGateway, WxPayApiError
from payments.models import Order, PaymentTransaction, Refund
from payments.shapes import RefundNotice, Transaction
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit
from wx_service.ground.validation import BadShape, parse

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8))
BATCH = 100  # orders (and refunds) one sweep handles; the next run takes the rest
STALE_AFTER = timedelta(minutes=3)  # an unpaid order or a PROCESSING refund this old gets queried
RECHECK_AFTER = timedelta(minutes=1)  # and not again sooner than this
# WeChat "has no such order" is believed only this long after we created it: a request that
# timed out may still be landing at WeChat for a moment.
NOT_FOUND_MARGIN = timedelta(minutes=5)
# The payment-code flow (payments/cashier.py) owns its order for WeChat's 45 s window.
CODEPAY_WINDOW = timedelta(seconds=60)
NOT_FOUND = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})
SETTLED_TRADE_STATES = frozenset({"SUCCESS", "REFUND", "CLOSED", "REVOKED"})
UNPAID_STATES = tuple(s.value for s in states.UNPAID)


class RetryLater(Exception):
    """WeChat's answer is unknown or says "again": the queue retries the same job."""

    transient = True


class UnknownRefund(LookupError):
    pass


# -- small helpers -----------------------------------------------------------------------------

def _release() -> None:
    """End the current transaction before calling WeChat, and forget what the session loaded
    so that what is applied afterwards is read afresh under the lock."""
    db.session.commit()
    db.session.expire_all()


def _fresh_order(out_trade_no: str) -> Order | None:
    return db.session.scalar(select(Order).where(Order.out_trade_no == out_trade_no)
                             .execution_options(populate_existing=True))


def _record(order: Order, kind: str, trade_state: str, outcome: str, raw: Mapping[str, Any]) -> None:
    """One row in the order's history for an answer of ours (close, reverse, a refusal)."""
    db.session.add(PaymentTransaction(order_id=order.id, notification_id=None, kind=kind,
                                      trade_state=trade_state[:24], outcome=outcome[:16],
                                      raw=json.dumps(dict(raw), ensure_ascii=False, sort_keys=True)))


def _error_raw(exc: WxPayApiError, **extra: Any) -> dict[str, Any]:
    return {"code": exc.code, "status": exc.status, "message": exc.message, **extra}


def _apply_event(out_trade_no: str, event: states.Event, *, record: tuple[str, str, Mapping[str, Any]] | None = None
                 ) -> states.Transition | None:
    """Our own event (CLOSE_OK, REVERSE_OK, EXPIRE) through the state machine, under the lock."""
    order = service.lock_order(out_trade_no)
    if order is None:
        return None
    transition = states.apply(order.state, event)
    if transition.changed:
        order.state = transition.new_state.value
        if transition.new_state in states.ENDED_UNPAID and order.closed_at is None:
            order.closed_at = utcnow()
    service._run_effects(order, transition, occurred_at=utcnow())
    if record is not None:
        kind, trade_state, raw = record
        _record(order, kind, trade_state, transition.outcome.value, raw)
    db.session.flush()
    log.info("order event applied", extra={"out_trade_no": out_trade_no, "event": event.value,
                                           "outcome": transition.outcome.value, "state": order.state})
    return transition


def _flag(out_trade_no: str, why: str) -> None:
    order = service.lock_order(out_trade_no)
    if order is not None:
        order.needs_reconcile = True
        db.session.flush()
    log.error("order needs reconciliation: %s", why, extra={"out_trade_no": out_trade_no})


def _apply_answer(answer: Mapping[str, Any], mchid: str) -> str | None:
    """A query answer applied as WeChat's news; answers that change nothing (NOTPAY while
    waiting) leave no row, so a sweep does not fill the history every minute. Returns the
    order's state afterwards."""
    try:
        transaction = parse(Transaction, answer)
    except BadShape as exc:
        named = answer.get("out_trade_no") if isinstance(answer, Mapping) else None
        if isinstance(named, str):
            _flag(named, f"query answer malformed: {exc}")
        else:
            log.error("order query answer malformed: %s", exc)
        return None
    out_trade_no = transaction.out_trade_no
    order = service.lock_order(out_trade_no)
    if order is None:
        return None
    try:
        event = states.Event(transaction.trade_state)
    except ValueError:
        event = None
    if event is not None and event not in (states.Event.REFUND_PARTIAL, states.Event.REFUND_FULL):
        if states.apply(order.state, event).outcome is states.Outcome.UNCHANGED:
            return order.state
    try:
        result = service.apply_payment_notification(transaction, None, mchid=mchid)
    except service.NotificationRejected as exc:
        _flag(out_trade_no, f"query answer refused: {exc}")
        return order.state
    order = service.lock_order(out_trade_no)
    if states.State(order.state) in states.ENDED_UNPAID and order.closed_at is None:
        order.closed_at = utcnow()
    db.session.flush()
    return result.state


def _query(gateway: WechatPayGateway, out_trade_no: str) -> dict[str, Any] | None:
    """The order as WeChat has it; None when WeChat has no such order; RetryLater when unknown."""
    try:
        return gateway.query_by_out_trade_no(out_trade_no)
    except WxPayApiError as exc:
        if exc.code in NOT_FOUND:
            return None
        if exc.retryable:
            raise RetryLater(f"query {out_trade_no}: {exc}") from exc
        raise
    except WxPayError as exc:  # the answer could not be verified: ask again later
        raise RetryLater(f"query {out_trade_no}: {exc}") from exc


def _end_unknown_order(out_trade_no: str, created_at: datetime) -> bool:
    """WeChat has no such order. Past the margin nobody can pay it: end it here, and say so."""
    if utcnow() - created_at < NOT_FOUND_MARGIN:
        return False
    transition = _apply_event(out_trade_no, states.Event.CLOSE_OK, record=(
        "query", "ORDER_NOT_EXIST", {"code": "ORDER_NOT_EXIST",
                                     "note": "WeChat has no such order; ended here"}))
    if transition is not None and transition.changed:
        log.warning("order unknown to WeChat, ended locally", extra={"out_trade_no": out_trade_no})
    return True


# -- refunds -----------------------------------------------------------------------------------

def new_refund_no() -> str:
    """R + Beijing time + random digits: unique, sortable, readable at the till (<= 64 chars)."""
    return money.new_number("R", random_digits=8)


def request_refund(out_trade_no: str, amount_fen: int, reason: str,
                   out_refund_no: str | None = None, *, staff_id: int | None = None, audit_detail: str = "") -> Refund:
    """Record a refund (PROCESSING) and queue the call to WeChat after commit. Flush only.

    Idempotent by out_refund_no: asking again with the same number and amount returns the
    first refund and sends nothing new. Raises service.UnknownOrder / service.RefundRefused.
    A new refund is audited (`refund.request` on the order) as `staff_id`'s, or the CLI's when None.
    """
    reason = (reason or "").strip()
    if len(reason) > 80:
        raise service.RefundRefused("the reason is at most 80 characters (WeChat shows it to the shopper)")
    refund, created = service.request_refund(out_trade_no, out_refund_no or new_refund_no(), amount_fen)
    if created:
        refund.reason = reason
        db.session.flush()
        order = service.get_order(out_trade_no)
        others = db.session.scalars(select(Refund).where(Refund.order_id == refund.order_id, Refund.id != refund.id))
        committed_before = rules.committed_fen(others)
        audit.record(staff_id, "refund.request", f"order:{out_trade_no}",
                     before={"state": order.state, "refunds_committed_fen": committed_before},
                     after={"out_refund_no": refund.out_refund_no, "amount_fen": refund.amount_fen,
                            "refunds_committed_fen": committed_before + refund.amount_fen, "status": refund.status,
                            "reason": reason},
                     detail=audit_detail or (audit.CLI if staff_id is None else ""))
        enqueue_after_commit("payments.jobs.refund", out_refund_no=refund.out_refund_no)
    return refund


def _apply_refund_answer(answer: Mapping[str, Any]) -> str:
    """A refund answer (refund call or refund query) applied like the notification would be."""
    resource = {**answer, "refund_status": answer.get("status")}
    try:
        service.apply_refund_notification(parse(RefundNotice, resource), None)
    except (service.NotificationRejected, BadShape) as exc:
        refund = db.session.scalar(select(Refund).where(Refund.out_refund_no == answer.get("out_refund_no"))
                                   .execution_options(populate_existing=True))
        if refund is not None:
            refund.needs_reconcile = True
            db.session.flush()
        log.error("refund answer refused: %s", exc, extra={"out_refund_no": answer.get("out_refund_no")})
    refund = db.session.scalar(select(Refund).where(Refund.out_refund_no == answer.get("out_refund_no"))
                               .execution_options(populate_existing=True))
    return refund.status if refund is not None else str(answer.get("status"))


def _refund_and_order(out_refund_no: str) -> tuple[Refund, Order]:
    row = db.session.execute(select(Refund, Order).join(Order, Order.id == Refund.order_id)
                             .where(Refund.out_refund_no == out_refund_no)
                             .execution_options(populate_existing=True)).first()
    if row is None:
        raise UnknownRefund(f"no refund {out_refund_no}")
    return row[0], row[1]


def refund(out_refund_no: str) -> str:
    """Job: send a recorded refund to WeChat and apply the answer; returns the refund's status.

    The same out_refund_no on every try, so WeChat refunds once however often this runs. A
    definite refusal (NOTENOUGH, PARAM_ERROR, ...) is checked with a refund query first (a
    refund WeChat does hold is applied, never dropped); one WeChat does not hold ends CLOSED,
    which gives its amount back to what may be refunded, with needs_reconcile set and the
    refusal in the order's history for staff. Not retried.
    """
    config = current_payment_config()
    row, order = _refund_and_order(out_refund_no)
    if row.status != rules.RefundStatus.PROCESSING.value or row.refund_id:
        return row.status  # already answered (or settled by a notification): nothing to send
    out_trade_no, amount, total, reason, appid = (order.out_trade_no, row.amount_fen, order.amount_fen,
                                                  row.reason, order.appid)
    _release()
    gateway = config.gateway(appid)
    try:
        answer = gateway.refund(out_refund_no, out_trade_no, amount, total,
                                notify_url=config.refund_notify_url, reason=reason or None)
    except WxPayApiError as exc:
        if exc.retryable:
            raise RetryLater(f"refund {out_refund_no}: {exc}") from exc
        return _refund_refused(gateway, out_refund_no, out_trade_no, exc)
    except WxPayError as exc:  # an answer we cannot trust: the refund may exist; same number again
        raise RetryLater(f"refund {out_refund_no}: {exc}") from exc
    status = _apply_refund_answer(answer)
    log.info("refund sent", extra={"out_refund_no": out_refund_no, "status": status})
    return status


def _refund_refused(gateway: WechatPayGateway, out_refund_no: str, out_trade_no: str,
                    exc: WxPayApiError) -> str:
    try:
        held = gateway.query_refund(out_refund_no)
    except WxPayApiError as query_exc:
        if query_exc.retryable:
            raise RetryLater(f"refund query {out_refund_no}: {query_exc}") from query_exc
        held = None
    except WxPayError as query_exc:
        raise RetryLater(f"refund query {out_refund_no}: {query_exc}") from query_exc
    if held is not None:
        return _apply_refund_answer(held)
    order = service.lock_order(out_trade_no)
    row = db.session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no)
                            .execution_options(populate_existing=True))
    if order is None or row is None:
        raise UnknownRefund(f"no refund {out_refund_no}")
    move = rules.apply_refund_status(row.status, rules.RefundStatus.CLOSED)
    if move.changed:
        row.status = move.status.value
    row.needs_reconcile = True
    _record(order, "refund", exc.code, "REFUSED", _error_raw(exc, out_refund_no=out_refund_no))
    db.session.flush()
    log.error("WeChat refused the refund: %s", exc, extra={"out_refund_no": out_refund_no})
    return row.status


# -- closing -----------------------------------------------------------------------------------

def close_order(out_trade_no: str) -> str:
    """Job: end an unpaid order at WeChat (close; reverse for a payment code) and here.

    Money received is never thrown away: if WeChat says the order was paid (the close is
    refused as ORDERPAID/TRADE_ERROR, or a payment-code query answers SUCCESS before the
    reverse), the payment is applied instead. Returns the order's state.
    """
    config = current_payment_config()
    order = _fresh_order(out_trade_no)
    if order is None:
        raise service.UnknownOrder(f"no order {out_trade_no}")
    if states.State(order.state) not in states.UNPAID:
        return order.state
    kind, appid, created_at = order.kind, order.appid, order.created_at
    _release()
    gateway = config.gateway(appid)
    if kind == "codepay":
        return _reverse(gateway, config.mchid, out_trade_no, created_at)
    try:
        gateway.close(out_trade_no)
    except WxPayApiError as exc:
        if exc.retryable:
            raise RetryLater(f"close {out_trade_no}: {exc}") from exc
        if exc.code in NOT_FOUND:
            if _end_unknown_order(out_trade_no, created_at):
                return _fresh_order(out_trade_no).state
            raise RetryLater(f"close {out_trade_no}: WeChat has no such order yet") from exc
        return _settle_by_query(gateway, config.mchid, out_trade_no, exc)
    except WxPayError as exc:
        raise RetryLater(f"close {out_trade_no}: {exc}") from exc
    _apply_event(out_trade_no, states.Event.CLOSE_OK, record=("close", "CLOSED", {"closed": True}))
    return _fresh_order(out_trade_no).state


def _reverse(gateway: WechatPayGateway, mchid: str, out_trade_no: str, created_at: datetime) -> str:
    answer = _query(gateway, out_trade_no)
    if answer is None:
        if _end_unknown_order(out_trade_no, created_at):
            return _fresh_order(out_trade_no).state
        raise RetryLater(f"reverse {out_trade_no}: WeChat has no such order yet")
    if answer.get("trade_state") in SETTLED_TRADE_STATES:
        return _apply_answer(answer, mchid) or ""
    try:
        recall = gateway.reverse(out_trade_no)
    except WxPayApiError as exc:
        if exc.code == "USERPAYING":
            raise RetryLater(f"reverse {out_trade_no}: the shopper is still paying") from exc
        if exc.code in NOT_FOUND and _end_unknown_order(out_trade_no, created_at):
            return _fresh_order(out_trade_no).state
        return _settle_by_query(gateway, mchid, out_trade_no, exc)
    except WxPayError as exc:
        raise RetryLater(f"reverse {out_trade_no}: {exc}") from exc
    if recall:
        raise RetryLater(f"reverse {out_trade_no}: WeChat asks to call reverse again (recall)")
    _apply_event(out_trade_no, states.Event.REVERSE_OK, record=("reverse", "REVOKED", {"recall": "N"}))
    return _fresh_order(out_trade_no).state


def _settle_by_query(gateway: WechatPayGateway, mchid: str, out_trade_no: str, exc: WxPayApiError) -> str:
    """WeChat refused to end the order: its query says why (paid, already ended). Anything else
    is for a person: flagged, and not retried."""
    answer = _query(gateway, out_trade_no)
    if answer is not None and answer.get("trade_state") in SETTLED_TRADE_STATES:
        return _apply_answer(answer, mchid) or ""
    order = service.lock_order(out_trade_no)
    if order is not None:
        _record(order, "close", exc.code, "REFUSED", _error_raw(exc))
    _flag(out_trade_no, f"WeChat refused to end the order: {exc.code}")
    return order.state if order is not None else ""


# -- sweeps ------------------------------------------------------------------------------------

def _stale(column: Any, now: datetime) -> Any:
    return or_(column.is_(None), column < now - RECHECK_AFTER)


def _claim(model: type[Order] | type[Refund], candidates: list[int], *conditions: Any) -> list[int]:
    """Stamp checked_at on the rows still matching; those are ours. A concurrent sweep that got
    there first has moved checked_at, so its rows no longer match here."""
    now = utcnow()
    claimed = []
    for row_id in candidates:
        result = db.session.execute(update(model).where(model.id == row_id, _stale(model.checked_at, now),
                                                        *conditions)
                                    .values(checked_at=now).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            claimed.append(row_id)
    db.session.commit()
    return claimed


def _orders(ids: list[int]) -> list[tuple[str, str, str, datetime]]:
    if not ids:
        return []
    rows = [(r.out_trade_no, r.appid, r.kind, r.created_at) for r in db.session.execute(
        select(Order.out_trade_no, Order.appid, Order.kind, Order.created_at)
        .where(Order.id.in_(ids)).order_by(Order.id))]
    db.session.commit()  # no transaction stays open while WeChat is asked about each
    return rows


def _check_order(config: PaymentConfig, out_trade_no: str, appid: str, created_at: datetime, *, expire: bool) -> None:
    """Query one order and apply the answer; if `expire` and it is still unpaid, EXPIRE it
    (which queues close_order after commit). Errors of one order never stop the sweep."""
    try:
        answer = _query(config.gateway(appid), out_trade_no)
    except (RetryLater, WxPayError) as exc:
        log.warning("order not checked: %s", exc, extra={"out_trade_no": out_trade_no})
        return
    if answer is None:
        _end_unknown_order(out_trade_no, created_at)
    else:
        _apply_answer(answer, config.mchid)
    if expire:
        order = _fresh_order(out_trade_no)
        if order is not None and states.State(order.state) in states.UNPAID:
            _apply_event(out_trade_no, states.Event.EXPIRE)
    db.session.commit()


def close_expired_orders() -> int:
    """Job (sweep): every native/JSAPI order still unpaid past expires_at is queried (a payment
    may have happened without its notification reaching us) and, still unpaid, gets EXPIRE,
    which closes it at WeChat (close_order, after commit). Returns how many were handled."""
    config = current_payment_config()
    now = utcnow()
    conditions = (Order.kind.in_(("native", "jsapi")), Order.state.in_(UNPAID_STATES),
                  Order.expires_at.is_not(None), Order.expires_at < now)
    candidates = list(db.session.scalars(select(Order.id).where(*conditions, _stale(Order.checked_at, now))
                                         .order_by(Order.expires_at).limit(BATCH)))
    orders = _orders(_claim(Order, candidates, *conditions))
    for out_trade_no, appid, _kind, created_at in orders:
        _check_order(config, out_trade_no, appid, created_at, expire=True)
    if orders:
        log.info("expired orders swept", extra={"count": len(orders)})
    return len(orders)


def query_stale_orders() -> int:
    """Job (sweep): unpaid orders older than STALE_AFTER and refunds PROCESSING that long are
    asked about (WeChat does not promise its notifications arrive), the answers applied.
    Payment-code orders still inside their flow's window are left to payments/cashier.py.
    Returns how many orders and refunds were checked."""
    config = current_payment_config()
    now = utcnow()
    conditions = (Order.state.in_(UNPAID_STATES), Order.created_at < now - STALE_AFTER,
                  or_(Order.kind != "codepay", Order.submitted_at.is_(None),
                      Order.submitted_at < now - CODEPAY_WINDOW))
    candidates = list(db.session.scalars(select(Order.id).where(*conditions, _stale(Order.checked_at, now))
                                         .order_by(Order.created_at).limit(BATCH)))
    orders = _orders(_claim(Order, candidates, *conditions))
    for out_trade_no, appid, _kind, created_at in orders:
        _check_order(config, out_trade_no, appid, created_at, expire=False)

    refund_conditions = (Refund.status == rules.RefundStatus.PROCESSING.value,
                         Refund.created_at < now - STALE_AFTER)
    candidates = list(db.session.scalars(select(Refund.id).where(*refund_conditions,
                                                                 _stale(Refund.checked_at, now))
                                         .order_by(Refund.created_at).limit(BATCH)))
    refund_ids = _claim(Refund, candidates, *refund_conditions)
    for refund_id in refund_ids:
        _check_refund(config, refund_id)
    if orders or refund_ids:
        log.info("stale orders swept", extra={"orders": len(orders), "refunds": len(refund_ids)})
    return len(orders) + len(refund_ids)


def _check_refund(config: PaymentConfig, refund_id: int) -> None:
    row = db.session.execute(select(Refund.out_refund_no, Refund.status, Refund.refund_id, Order.appid)
                             .join(Order, Order.id == Refund.order_id).where(Refund.id == refund_id)).first()
    if row is None or row.status != rules.RefundStatus.PROCESSING.value:
        return
    out_refund_no, status, wechat_id, appid = row
    _release()
    try:
        answer = config.gateway(appid).query_refund(out_refund_no)
    except WxPayApiError as exc:
        if exc.code in NOT_FOUND and not wechat_id:
            # WeChat never got it (the job was lost): send it now, with the same number.
            enqueue_after_commit("payments.jobs.refund", out_refund_no=out_refund_no)
            db.session.commit()
            log.warning("refund unknown to WeChat, sent again", extra={"out_refund_no": out_refund_no})
        else:
            log.warning("refund not checked: %s", exc, extra={"out_refund_no": out_refund_no})
        return
    except WxPayError as exc:
        log.warning("refund not checked: %s", exc, extra={"out_refund_no": out_refund_no})
        return
    try:
        move = rules.apply_refund_status(status, answer.get("status"))
    except ValueError:
        move = rules.RefundMove(rules.RefundStatus(status), changed=True)  # let the service refuse it
    if move.changed or move.conflict:
        _apply_refund_answer(answer)
    db.session.commit()
