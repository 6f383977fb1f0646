"""Payments: orders, payment and refund notifications, refund requests. Flush, never commit.

Every piece of news about an order is applied under the order's row lock (SELECT ... FOR UPDATE
on Postgres; on SQLite a no-op UPDATE takes the database write lock first), through the pure
state machine in payments.states, so that an effect (points awarded, points taken back) runs
exactly once whatever the order and number of notifications. The notification id is unique on
pay_transactions: a retry of a notification already stored changes nothing.

Mismatches (other mchid, other appid, unknown out_trade_no, amount or currency that differ from
the order) raise NotificationRejected and nothing is written. Why refuse rather than record and
acknowledge: the notification was signed by WeChat, so a mismatch is not line noise but a
disagreement about money (our order row is wrong, or the notification was meant for another
merchant or app). Acknowledging would tell WeChat the matter is settled and it would never ask
again; refusing keeps WeChat re-sending it (for about a day, on its back-off), each refusal is
logged at ERROR for the reconciliation run, and the order is not marked paid on amounts we
never asked for. A retry does not fix it by itself, but it costs nothing and keeps the evidence
coming until someone looks; nothing about the order changes meanwhile.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from marketing import touches
from members import identity, points
from members.models import Member
from payments import refunds as rules
from payments import states
from payments.models import Order, PaymentTransaction, Refund
from payments.shapes import Amount, RefundAmount, RefundNotice, Transaction
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit

log = logging.getLogger(__name__)

KINDS = frozenset({"native", "jsapi", "codepay"})


class PaymentError(Exception):
    """Base of the service's refusals."""


class NotificationRejected(PaymentError):
    """An authentic notification that does not match our records: refused, nothing written."""


class UnknownOrder(PaymentError):
    pass


class RefundRefused(PaymentError):
    pass


@dataclass(frozen=True)
class NotificationResult:
    out_trade_no: str
    outcome: str  # states.Outcome value, or DUPLICATE for a notification id already stored
    state: str
    effects: tuple[str, ...] = ()

    @property
    def duplicate(self) -> bool:
        return self.outcome == "DUPLICATE"


# -- orders ----------------------------------------------------------------------------------------

def create_order(out_trade_no: str, kind: str, amount_fen: int, appid: str, *, description: str = "",
                 member_id: int | None = None, payer_openid: str | None = None,
                 expires_at: datetime | None = None, attach: str = "", currency: str = "CNY") -> Order:
    """A new order in CREATED. Calling WeChat to place it is the gateway's job (after commit)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise ValueError("amount_fen is a positive integer number of fen")
    if not out_trade_no or len(out_trade_no) > 32:
        raise ValueError("out_trade_no is 1-32 characters")
    order = Order(out_trade_no=out_trade_no, kind=kind, amount_fen=amount_fen, appid=appid,
                  description=description, member_id=member_id, payer_openid=payer_openid,
                  expires_at=expires_at, attach=attach, currency=currency,
                  state=states.State.CREATED.value)
    db.session.add(order)
    db.session.flush()
    return order


def get_order(out_trade_no: str) -> Order | None:
    return db.session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))


def lock_order(out_trade_no: str) -> Order | None:
    """The order row, locked until the transaction ends (None if there is no such order)."""
    session = db.session
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a write takes the database lock now, so the read below is
        # current and no other writer can interleave (the busy timeout queues the others).
        session.execute(update(Order).where(Order.out_trade_no == out_trade_no)
                        .values(state=Order.state))
    return session.scalar(select(Order).where(Order.out_trade_no == out_trade_no)
                          .with_for_update().execution_options(populate_existing=True))


def _lock_order_for(out_trade_no: str, notification_id: str | None) -> tuple[Order | None, bool]:
    """lock_order, and whether this notification id is stored already, in the same statement.

    On Postgres the EXISTS is read with the statement's snapshot, taken before the lock wait:
    a request that stored the same id and committed while this one waited is not seen here. It
    is still applied once: this request then reads the order as that one left it (the state
    machine finds nothing more to do) and its own row for the id fails the unique constraint,
    which the edge answers as the duplicate it is (is_duplicate_notification)."""
    if not notification_id:
        return lock_order(out_trade_no), False
    session = db.session
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Order).where(Order.out_trade_no == out_trade_no).values(state=Order.state))
    seen = select(PaymentTransaction.id).where(PaymentTransaction.notification_id == notification_id).exists()
    row = session.execute(select(Order, seen).where(Order.out_trade_no == out_trade_no)
                          .with_for_update(of=Order).execution_options(populate_existing=True)).first()
    return (row[0], bool(row[1])) if row is not None else (None, False)


def _seen(notification_id: str | None) -> bool:
    if not notification_id:
        return False
    return db.session.scalar(select(PaymentTransaction.id).where(
        PaymentTransaction.notification_id == notification_id)) is not None


def _record(order: Order, notification_id: str | None, kind: str, trade_state: str, outcome: str,
            resource: Transaction | RefundNotice) -> None:
    db.session.add(PaymentTransaction(order_id=order.id, notification_id=notification_id or None,
                                      kind=kind, trade_state=trade_state, outcome=outcome,
                                      raw=json.dumps(resource.record(), ensure_ascii=False, sort_keys=True)))


def _parse_time(value: str | None) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        except ValueError:
            pass
    return utcnow()


# -- payment notifications -------------------------------------------------------------------------

def _check(resource: Transaction | RefundNotice, field: str, expected: str | None) -> None:
    if expected is not None and getattr(resource, field) != expected:
        raise NotificationRejected(f"{field} {getattr(resource, field)!r} is not ours")


def apply_payment_notification(resource: Transaction, notification_id: str | None, *,
                               mchid: str | None = None) -> NotificationResult:
    """Apply a decrypted transaction resource (TRANSACTION.* notification or a query answer),
    parsed by whoever received it (payments.shapes).

    `mchid` is the merchant number we expect (the edge passes the configured one). Raises
    NotificationRejected when the resource does not match our order (see the module docstring).
    """
    out_trade_no = resource.out_trade_no
    _check(resource, "mchid", mchid)
    trade_state = resource.trade_state
    try:
        event = states.Event(trade_state)
    except ValueError:
        raise NotificationRejected(f"unknown trade_state {trade_state!r}") from None
    if event in (states.Event.REFUND_PARTIAL, states.Event.REFUND_FULL):
        raise NotificationRejected(f"trade_state {trade_state!r} is ours, not WeChat's")
    order, seen = _lock_order_for(out_trade_no, notification_id)
    if order is None:
        raise NotificationRejected(f"no order {out_trade_no}")
    _check(resource, "appid", order.appid)
    amount = resource.amount or Amount()
    if amount.total != order.amount_fen:
        raise NotificationRejected(f"amount {amount.total!r} differs from the order's "
                                   f"{order.amount_fen} fen")
    if (amount.currency or "CNY") != order.currency:
        raise NotificationRejected(f"currency {amount.currency!r} differs from the order's")
    if seen:
        return NotificationResult(order.out_trade_no, "DUPLICATE", order.state)

    transition = states.apply(order.state, event)
    payer = resource.payer.openid if resource.payer is not None else None
    paid_at = order.paid_at
    if transition.changed and event in (states.Event.SUCCESS, states.Event.REFUND) and paid_at is None:
        paid_at = _parse_time(resource.success_time)
    # Effects first, the order's own changes after. The member's row must be locked before this
    # transaction writes anything that refers to it: points_member_id is a foreign key, and its
    # key-share lock taken before the award's FOR UPDATE would let two payments of one member
    # deadlock. Written afterwards, the order also costs one UPDATE.
    _run_effects(order, transition, occurred_at=paid_at or utcnow(),
                 payer_openid=order.payer_openid or (payer if transition.changed else None))
    if transition.changed:
        if payer and not order.payer_openid:
            order.payer_openid = payer
        transaction_id = resource.transaction_id
        if transaction_id and not order.transaction_id:
            order.transaction_id = transaction_id
        order.paid_at = paid_at
        order.state = transition.new_state.value
    _record(order, notification_id, "transaction", str(trade_state), transition.outcome.value, resource)
    db.session.flush()
    log.info("payment notification applied", extra={"out_trade_no": order.out_trade_no,
                                                     "outcome": transition.outcome.value,
                                                     "state": order.state})
    return NotificationResult(order.out_trade_no, transition.outcome.value, order.state,
                              tuple(e.value for e in transition.effects))


def _member_for(order: Order, payer_openid: str | None) -> Member | None:
    if order.member_id is not None:
        return identity.get_member(order.member_id)
    if payer_openid:
        # WeChat reports the payer's openid under the order's app: the mini-program's for its JSAPI
        # orders (counter "mp", payments.jsapi.MP_COUNTER), the OA's for the rest (counter QR,
        # payment code, OA pages). Try that kind first, then the other (one appid for both apps).
        kinds = ("mp", "oa") if order.kind == "jsapi" and order.counter == "mp" else ("oa", "mp")
        for kind in kinds:
            member = identity.member_for_openid(kind, payer_openid)
            if member is not None:
                return member
    return None


def _run_effects(order: Order, transition: states.Transition, *, occurred_at: datetime,
                 refund: Refund | None = None, payer_openid: str | None = None) -> None:
    """`payer_openid`: who paid, when the order does not record it yet (set after the effects)."""
    for effect in transition.effects:
        if effect is states.Effect.AWARD_POINTS:
            # Holding `member` keeps it in the session's (weak) identity map: the award finds it
            # there instead of reading the row again before locking it.
            member = None
            if order.points_member_id is None:
                member = _member_for(order, payer_openid or order.payer_openid)
            if member is not None:
                points.award_for_payment(member.id, order.amount_fen, order.out_trade_no, occurred_at)
                # Only now: the member's row is locked (see apply_payment_notification).
                order.points_member_id = member.id
            _touch_paid(order, payer_openid or order.payer_openid, occurred_at)
        elif effect is states.Effect.REVERSE_POINTS:
            if order.points_member_id is not None and refund is not None:
                points.reverse_for_refund(order.points_member_id, order.out_trade_no, refund.amount_fen,
                                          refund.out_refund_no, occurred_at)
        elif effect is states.Effect.RECONCILE:
            order.needs_reconcile = True
            log.error("payment needs reconciliation", extra={"out_trade_no": order.out_trade_no,
                                                             "reason": transition.reason})
        elif effect is states.Effect.END_AT_WECHAT:
            # Closing (a payment code: reversing) calls WeChat, so it is a job, queued only once
            # this is committed. Not a disagreement, so no reconciliation flag here: the job sets
            # it if WeChat refuses for good.
            enqueue_after_commit("payments.jobs.close_order", out_trade_no=order.out_trade_no)


def _touch_paid(order: Order, payer_openid: str | None, occurred_at: datetime) -> None:
    """The funnel's payment touch, once per order (AWARD_POINTS is the order's first becoming
    paid, on every flow: counter QR, payment code, JSAPI, a refund proving the payment). Keyed
    by out_trade_no; the brand is the counter's, the campaign the order's source when that is one
    of our QR scenes."""
    member_id = order.points_member_id or order.member_id
    if member_id is None and not payer_openid:
        log.warning("paid order without payer or member: no funnel touch", extra={"out_trade_no": order.out_trade_no})
        return
    touches.record("payment", key=order.out_trade_no, member_id=member_id, openid=payer_openid or "",
                   amount_fen=order.amount_fen, counter=order.counter, brand_counter=order.counter,
                   source=order.source, occurred_at=occurred_at)


def _touch_refunded(order: Order, refund: Refund) -> None:
    """The funnel takes a refund off the sale it belongs to (marketing.funnel): keyed by
    out_refund_no, naming the payment's key."""
    member_id = order.points_member_id or order.member_id
    if member_id is None and not order.payer_openid:
        return
    touches.record("refund", key=refund.out_refund_no, member_id=member_id, openid=order.payer_openid or "",
                   amount_fen=refund.amount_fen, ref=order.out_trade_no, occurred_at=refund.succeeded_at)


# -- refunds ---------------------------------------------------------------------------------------

def _refund_rules(rows: list[Refund]) -> list[rules.Refund]:
    return [rules.Refund(r.out_refund_no, r.amount_fen, rules.RefundStatus(r.status)) for r in rows]


def _refunds_of(order: Order) -> list[Refund]:
    return list(db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)))


def _paid_fen(order: Order) -> int:
    return order.amount_fen if states.State(order.state) in states.PAID_FAMILY else 0


def request_refund(out_trade_no: str, out_refund_no: str, amount_fen: int) -> tuple[Refund, bool]:
    """Record a refund request (PROCESSING); returns (refund, created). Idempotent by
    out_refund_no; never more than was paid. The call to WeChat is the gateway's, after commit."""
    order = lock_order(out_trade_no)
    if order is None:
        raise UnknownOrder(f"no order {out_trade_no}")
    rows = _refunds_of(order)
    decision = rules.decide_refund(_paid_fen(order), _refund_rules(rows), out_refund_no, amount_fen)
    if decision.verdict is rules.Verdict.EXISTING:
        return next(r for r in rows if r.out_refund_no == out_refund_no), False
    if decision.verdict is rules.Verdict.REFUSED:
        raise RefundRefused(decision.reason)
    # A refund number is unique across orders too (the constraint says so; say it kindly first).
    if db.session.scalar(select(Refund.id).where(Refund.out_refund_no == out_refund_no)) is not None:
        raise RefundRefused("refund number already used for another order")
    refund = Refund(out_refund_no=out_refund_no, order_id=order.id, amount_fen=amount_fen,
                    status=rules.RefundStatus.PROCESSING.value)
    db.session.add(refund)
    db.session.flush()
    return refund, True


def apply_refund_notification(resource: RefundNotice, notification_id: str | None, *,
                              mchid: str | None = None) -> NotificationResult:
    """Apply a decrypted refund resource (REFUND.SUCCESS / ABNORMAL / CLOSED, or a query answer).

    A refund we did not request (made in the merchant console) is recorded when it fits within
    what the order's amount allows. SUCCESS, the first time, moves the order (states.py: a refund
    before the payment news proves the payment, points are awarded then reversed) and takes back
    points in proportion, once, keyed by out_refund_no.
    """
    out_trade_no, out_refund_no = resource.out_trade_no, resource.out_refund_no
    _check(resource, "mchid", mchid)
    try:
        status = rules.RefundStatus(resource.refund_status)
    except ValueError:
        raise NotificationRejected(f"unknown refund_status {resource.refund_status!r}") from None
    order = lock_order(out_trade_no)
    if order is None:
        raise NotificationRejected(f"no order {out_trade_no}")
    amount = resource.amount or RefundAmount()
    if amount.total is not None and amount.total != order.amount_fen:
        raise NotificationRejected(f"order total {amount.total!r} differs from the order's "
                                   f"{order.amount_fen} fen")
    refund_fen = amount.refund
    rows = _refunds_of(order)
    refund = next((r for r in rows if r.out_refund_no == out_refund_no), None)
    if refund is not None and refund_fen is not None and refund_fen != refund.amount_fen:
        raise NotificationRejected(f"refund amount {refund_fen!r} differs from the refund's "
                                   f"{refund.amount_fen} fen")
    if _seen(notification_id):
        return NotificationResult(order.out_trade_no, "DUPLICATE", order.state)
    if refund is None:
        if refund_fen is None or refund_fen <= 0:
            raise NotificationRejected("refund amount missing")
        # Not requested by us: cap it against the order's amount (paid or about to be proven paid).
        decision = rules.decide_refund(order.amount_fen, _refund_rules(rows), out_refund_no, refund_fen)
        if decision.verdict is not rules.Verdict.NEW:
            raise NotificationRejected(f"refund {out_refund_no}: {decision.reason}")
        if db.session.scalar(select(Refund.id).where(Refund.out_refund_no == out_refund_no)) is not None:
            raise NotificationRejected(f"refund {out_refund_no} belongs to another order")
        refund = Refund(out_refund_no=out_refund_no, order_id=order.id, amount_fen=refund_fen,
                        status=rules.RefundStatus.PROCESSING.value)
        db.session.add(refund)
        rows.append(refund)
    if resource.refund_id and not refund.refund_id:
        refund.refund_id = resource.refund_id

    move = rules.apply_refund_status(refund.status, status)
    outcome = states.Outcome.UNCHANGED
    transition: states.Transition | None = None
    if move.conflict:
        refund.needs_reconcile = True
        order.needs_reconcile = True
        outcome = states.Outcome.CONFLICT
        log.error("refund needs reconciliation", extra={"out_refund_no": out_refund_no})
    elif move.changed:
        refund.status = move.status.value
        outcome = states.Outcome.APPLIED
        if move.status is rules.RefundStatus.SUCCESS:
            refund.succeeded_at = _parse_time(resource.success_time)
            event = rules.order_refund_event(order.amount_fen, _refund_rules(rows))
            if event is not None:
                transition = states.apply(order.state, event)
                if transition.changed:
                    if order.paid_at is None and states.State(order.state) in states.UNPAID:
                        order.paid_at = refund.succeeded_at
                    order.state = transition.new_state.value
                _run_effects(order, transition, occurred_at=refund.succeeded_at, refund=refund)
            _touch_refunded(order, refund)
    _record(order, notification_id, "refund", status.value, outcome.value, resource)
    db.session.flush()
    return NotificationResult(order.out_trade_no, outcome.value, order.state,
                              tuple(e.value for e in transition.effects) if transition else ())


def is_duplicate_notification(exc: IntegrityError) -> bool:
    """True when a commit failed only because another request stored the same notification id."""
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "notification_id" in text
