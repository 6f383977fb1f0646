"""The order state machine: pure rules, no database, no clock, no network.

WeChat tells us about an order many times and in any order: the notification is retried
(reference §10.4), queries overlap with notifications, a refund notification can beat the
payment one. So every piece of news is an `Event` applied to the order's current `State` under
the order row lock, and the answer says what the caller must do (the `effects`) exactly once.
Because an effect is only emitted by a transition that changes the state, running the same
event again can never repeat it: a second SUCCESS awards no second batch of points.

States (decided here, see the table in `TRANSITIONS`):

* CREATED: the order exists at WeChat (or we asked for it), nothing paid yet.
* USERPAYING: payment code only; the shopper is typing the password (reference §9.3).
* PAYERROR: WeChat reported a failed payment. Not an end: the order must still be closed or
  reversed ("every order ends paid, closed or reversed", §9.3 "交易闭环"), and a later SUCCESS
  (the shopper tried again) still wins.
* PAID: money received. Terminal, except that refunds move it on.
* PARTIALLY_REFUNDED, REFUNDED: some or all of the money has been returned (refund SUCCESS).
  There is deliberately no REFUNDING order state: several refunds may be in flight at once, so
  "in flight" lives on each refund row (PROCESSING, see payments/refunds.py), and the order
  state only says how much money actually went back.
* CLOSED: ended unpaid (closed by us or WeChat, or a definite failure of a payment code).
* REVERSED: a payment-code order reversed (撤销, WeChat's REVOKED).

Outcomes: APPLIED (state changed and/or effects to run), UNCHANGED (news consistent with
where the order is, e.g. NOTPAY while we wait), IGNORED (a duplicate or late event: nothing
changes, acknowledge it), CONFLICT (cannot happen if both sides behave; nothing changes, the
order is flagged for reconciliation with the RECONCILE effect). Nothing raises for a known
state and event: a notification handler must always be able to answer WeChat.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(str, Enum):
    CREATED = "CREATED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"
    PAID = "PAID"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"
    REVERSED = "REVERSED"


class Event(str, Enum):
    # WeChat's trade_state, from a notification or a query (reference §9.4, §10.3).
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"  # "转入退款": it was paid, and a refund exists
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"
    ACCEPT = "ACCEPT"  # accepted, deduction pending: still waiting, like NOTPAY
    # A refund of this order reached SUCCESS (first time for that refund row; see
    # payments.refunds.order_refund_event): the money refunded so far is below / equal to paid.
    REFUND_PARTIAL = "REFUND_PARTIAL"
    REFUND_FULL = "REFUND_FULL"
    # Our own actions and answers.
    SUBMIT_FAILED = "SUBMIT_FAILED"  # payment code: a definite failure (§9.3 step 5)
    CLOSE_OK = "CLOSE_OK"  # the close API succeeded (or answered ORDERCLOSED)
    REVERSE_OK = "REVERSE_OK"  # the reverse API answered with recall=N
    EXPIRE = "EXPIRE"  # our pay deadline passed with no payment seen


class Effect(str, Enum):
    AWARD_POINTS = "AWARD_POINTS"  # award points for the payment: the first success only
    REVERSE_POINTS = "REVERSE_POINTS"  # take back points in proportion (refunds.points_to_reverse)
    END_AT_WECHAT = "END_AT_WECHAT"  # close the order at WeChat (reverse, for a payment code)
    RECONCILE = "RECONCILE"  # flag for reconciliation: the two sides disagree


class Outcome(str, Enum):
    APPLIED = "APPLIED"
    UNCHANGED = "UNCHANGED"
    IGNORED = "IGNORED"
    CONFLICT = "CONFLICT"


@dataclass(frozen=True)
class Transition:
    new_state: State
    effects: tuple[Effect, ...] = ()
    outcome: Outcome = Outcome.APPLIED
    reason: str = ""

    @property
    def changed(self) -> bool:
        """True when the caller must write something (a new state or effects to run)."""
        return self.outcome is Outcome.APPLIED


UNPAID = frozenset({State.CREATED, State.USERPAYING, State.PAYERROR})
PAID_FAMILY = frozenset({State.PAID, State.PARTIALLY_REFUNDED, State.REFUNDED})
ENDED_UNPAID = frozenset({State.CLOSED, State.REVERSED})
TERMINAL = PAID_FAMILY | ENDED_UNPAID


# A rule is (target, effects, reason); target is a State or one of these three markers.
_STAY, _IGNORE, _CONFLICT = "stay", "ignore", "conflict"
_Rule = tuple[object, tuple[Effect, ...], str]


def _row(**rules: _Rule) -> dict[Event, _Rule]:
    return {Event[name]: rule for name, rule in rules.items()}


_AWARD = (Effect.AWARD_POINTS,)
_AWARD_AND_REVERSE = (Effect.AWARD_POINTS, Effect.REVERSE_POINTS)
_REVERSE_PTS = (Effect.REVERSE_POINTS,)
_END = (Effect.END_AT_WECHAT,)

# What every unpaid state does with each event; USERPAYING and PAYERROR differ only a little.
_UNPAID_COMMON: dict[Event, _Rule] = _row(
    SUCCESS=(State.PAID, _AWARD, "first success: award points"),
    REFUND=(State.PAID, _AWARD, "trade_state REFUND means it was paid: the payment news came late"),
    NOTPAY=(_STAY, (), "still waiting for the shopper"),
    ACCEPT=(_STAY, (), "accepted, deduction pending"),
    CLOSED=(State.CLOSED, (), "closed at WeChat"),
    REVOKED=(State.REVERSED, (), "reversed at WeChat"),
    USERPAYING=(State.USERPAYING, (), "the shopper is entering the password"),
    PAYERROR=(State.PAYERROR, (), "payment failed at WeChat; the order must still be ended"),
    REFUND_PARTIAL=(State.PARTIALLY_REFUNDED, _AWARD_AND_REVERSE,
                    "refund before the payment news: the refund proves the payment"),
    REFUND_FULL=(State.REFUNDED, _AWARD_AND_REVERSE,
                 "refund before the payment news: the refund proves the payment"),
    SUBMIT_FAILED=(State.CLOSED, (), "definite payment-code failure: nothing was taken"),
    CLOSE_OK=(State.CLOSED, (), "closed by us"),
    REVERSE_OK=(State.REVERSED, (), "reversed by us"),
    EXPIRE=(_STAY, _END, "deadline passed: end it at WeChat, the answer decides the state"),
)

_PAID_LATE = "late: the order was already paid"
_ENDED_LATE = "late: the order already ended unpaid"

TRANSITIONS: dict[State, dict[Event, _Rule]] = {
    State.CREATED: {**_UNPAID_COMMON,
                    Event.NOTPAY: (_STAY, (), "still waiting for the shopper")},
    State.USERPAYING: {**_UNPAID_COMMON,
                       Event.USERPAYING: (_STAY, (), "still entering the password"),
                       Event.NOTPAY: (_STAY, (), "still waiting for the shopper")},
    State.PAYERROR: {**_UNPAID_COMMON,
                     Event.USERPAYING: (_IGNORE, (), "late: WeChat already reported PAYERROR"),
                     Event.PAYERROR: (_IGNORE, (), "duplicate PAYERROR")},
    State.PAID: _row(
        SUCCESS=(_IGNORE, (), "duplicate success: points were awarded once already"),
        REFUND=(_IGNORE, (), "refund rows and their own notifications drive refund states"),
        NOTPAY=(_IGNORE, (), _PAID_LATE), ACCEPT=(_IGNORE, (), _PAID_LATE),
        CLOSED=(_IGNORE, (), _PAID_LATE + " (a paid order cannot be closed)"),
        REVOKED=(_CONFLICT, (), "WeChat reversed a paid order: money returned, points awarded"),
        USERPAYING=(_IGNORE, (), _PAID_LATE), PAYERROR=(_IGNORE, (), _PAID_LATE),
        REFUND_PARTIAL=(State.PARTIALLY_REFUNDED, _REVERSE_PTS, "first refund succeeded"),
        REFUND_FULL=(State.REFUNDED, _REVERSE_PTS, "all the money refunded"),
        SUBMIT_FAILED=(_IGNORE, (), _PAID_LATE),
        CLOSE_OK=(_CONFLICT, (), "close succeeded on an order we hold paid"),
        REVERSE_OK=(_CONFLICT, (), "reverse refunded an order we hold paid: points awarded"),
        EXPIRE=(_IGNORE, (), _PAID_LATE),
    ),
}

TRANSITIONS[State.PARTIALLY_REFUNDED] = {
    **TRANSITIONS[State.PAID],
    Event.REFUND_PARTIAL: (State.PARTIALLY_REFUNDED, _REVERSE_PTS, "another refund succeeded"),
    Event.REFUND_FULL: (State.REFUNDED, _REVERSE_PTS, "the rest of the money refunded"),
}
TRANSITIONS[State.REFUNDED] = {
    **TRANSITIONS[State.PAID],
    Event.REFUND_PARTIAL: (_IGNORE, (), "late: everything was refunded already"),
    Event.REFUND_FULL: (_IGNORE, (), "duplicate: everything was refunded already"),
}
TRANSITIONS[State.CLOSED] = _row(
    SUCCESS=(_CONFLICT, (), "paid after we closed it: money taken on a closed order"),
    REFUND=(_CONFLICT, (), "WeChat says paid (and refunding) an order we closed"),
    NOTPAY=(_IGNORE, (), _ENDED_LATE), ACCEPT=(_IGNORE, (), _ENDED_LATE),
    CLOSED=(_IGNORE, (), "duplicate close"),
    REVOKED=(_IGNORE, (), "already ended unpaid; closed and reversed both mean no money"),
    USERPAYING=(_IGNORE, (), _ENDED_LATE), PAYERROR=(_IGNORE, (), _ENDED_LATE),
    REFUND_PARTIAL=(_CONFLICT, (), "a refund of an order we closed unpaid"),
    REFUND_FULL=(_CONFLICT, (), "a refund of an order we closed unpaid"),
    SUBMIT_FAILED=(_IGNORE, (), _ENDED_LATE),
    CLOSE_OK=(_IGNORE, (), "duplicate close"),
    REVERSE_OK=(_IGNORE, (), "already ended unpaid; closed and reversed both mean no money"),
    EXPIRE=(_IGNORE, (), _ENDED_LATE),
)
TRANSITIONS[State.REVERSED] = {
    **TRANSITIONS[State.CLOSED],
    # A reverse refunds a paid order (§9.3 step 6), so a SUCCESS or REFUND seen after our
    # reverse describes the past: the money is back with the shopper, and no points are due.
    Event.SUCCESS: (_IGNORE, (), "late: the reverse refunded any payment"),
    Event.REFUND: (_IGNORE, (), "late: the reverse refunded any payment"),
    Event.CLOSED: (_IGNORE, (), "already ended unpaid; closed and reversed both mean no money"),
    Event.REVOKED: (_IGNORE, (), "duplicate reverse"),
    Event.REVERSE_OK: (_IGNORE, (), "duplicate reverse (recall=N again)"),
    Event.CLOSE_OK: (_IGNORE, (), "already ended unpaid; closed and reversed both mean no money"),
    Event.REFUND_PARTIAL: (_CONFLICT, (), "we never refund a reversed order"),
    Event.REFUND_FULL: (_CONFLICT, (), "we never refund a reversed order"),
}


def apply(current: State | str, event: Event | str) -> Transition:
    """What `event` does to an order in `current`; never raises for known values.

    Callers hold the order row lock, write `new_state` when `outcome` is APPLIED, run each
    effect once in the order given (AWARD_POINTS before REVERSE_POINTS), and acknowledge the
    notification whatever the outcome. Unknown state or event strings raise ValueError: that
    is a bug on our side, not news from WeChat.
    """
    state, ev = State(current), Event(event)
    target, effects, reason = TRANSITIONS[state][ev]
    if target == _STAY:
        outcome = Outcome.APPLIED if effects else Outcome.UNCHANGED
        return Transition(state, tuple(effects), outcome, reason)
    if target == _IGNORE:
        return Transition(state, (), Outcome.IGNORED, reason)
    if target == _CONFLICT:
        return Transition(state, (Effect.RECONCILE,), Outcome.CONFLICT, reason)
    if target == state and not effects:
        return Transition(state, (), Outcome.UNCHANGED, reason)
    return Transition(target, tuple(effects), Outcome.APPLIED, reason)


def is_terminal(state: State | str) -> bool:
    """Ended: paid (refunds may still follow), closed or reversed."""
    return State(state) in TERMINAL
