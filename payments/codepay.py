"""The payment-code (付款码) flow as a pure schedule: what to do next, and when.

The cashier scans the shopper's code and we submit the order. WeChat then answers paid,
failed, or "not sure yet" (USERPAYING while the shopper types a password; SYSTEMERROR,
BANKERROR or no answer at all). Reference §9.3 says what to do with each: query on a schedule
within WeChat's 45-second window, reverse (撤销) when it is still unclear, never sooner than
WeChat allows, and again while reverse answers recall=Y, so that every order ends paid, closed
or reversed ("交易闭环").

`next_step(submitted_at, history, now)` is a pure function of what WeChat has answered so far.
A worker stores each answer before acting on the next decision; if it is killed, the one that
picks the order up calls `next_step` with the stored answers and gets the same decision
(a time in the past means "do it now").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Sequence

from payments.states import Event

# --- Numbers, each from reference/wechat-protocol.md -------------------------------------------

# §9.3 step 2: after SYSTEMERROR, a timeout or no response, wait 5 s before the first query.
SYSTEM_ERROR_QUERY_DELAY = timedelta(seconds=5)
# §9.3 step 4: BANKERROR is unknown too, "query immediately".
BANK_ERROR_QUERY_DELAY = timedelta(seconds=0)
# §9.3 step 3: poll while USERPAYING. The official page suggests 10 s, WeChat staff use 5 s;
# we take 5 s so the till learns of success sooner. It is also our retry delay after a failed
# query call. Either value keeps several queries inside the 45 s window.
QUERY_INTERVAL = timedelta(seconds=5)
# §9.3 step 3: WeChat auto-revokes an unpaid payment-code order 45 s after creation, so polling
# happens within 45 s of submitting; a query that would fall later becomes a reverse.
QUERY_WINDOW = timedelta(seconds=45)
# §9.3 step 6: "don't reverse immediately after deduction; wait at least 15 s".
REVERSE_NOT_BEFORE = timedelta(seconds=15)
# §9.3 step 6: reverse works only within 7 days; after that only a refund (by hand) helps.
REVERSE_VALID_FOR = timedelta(days=7)
# Ours, not WeChat's: the reference gives no pause between reverse calls (recall=Y says "call
# again") nor a cap. We wait QUERY_INTERVAL and stop after this many calls, then hand the
# order to reconciliation rather than loop for ever.
REVERSE_RETRY_DELAY = QUERY_INTERVAL
MAX_REVERSE_CALLS = 10

# §9.3: "auth_code is 18 digits starting with 10-15".
AUTH_CODE = re.compile(r"1[0-5][0-9]{16}")

# §9.3 step 5 (v2 err_code) and §10.6 (v3 code): definite failures, nothing was taken; show the
# error and do not query. Anything not listed here (or in the paid/unknown sets) is treated as
# unknown and queried: a query is harmless, a wrong "failed" could lose a payment.
DEFINITE_FAILURES = frozenset({
    "AUTHCODEEXPIRE", "AUTH_CODE_INVALID", "NOTENOUGH", "NOTSUPORTCARD", "ORDERCLOSED",
    "ORDERREVERSED", "PARAM_ERROR", "SIGNERROR",
    "INVALID_REQUEST", "SIGN_ERROR", "NOAUTH", "RULE_LIMIT",
})
# §9.3 steps 1 and 5: SUCCESS is paid; ORDERPAID "means it was already paid".
SUBMIT_PAID = frozenset({"SUCCESS", "ORDERPAID"})
# §9.3 step 4: BANKERROR, queried at once.
BANK_ERRORS = frozenset({"BANKERROR"})
# §9.4 / §10.3 trade_state values that settle the order.
QUERY_PAID = frozenset({"SUCCESS", "REFUND"})  # REFUND: it was paid, then refunded
# Errors of the reverse call worth retrying; others go to reconciliation. §10.6: retry 5xx.
RETRYABLE_ERRORS = frozenset({"SYSTEMERROR", "SYSTEM_ERROR", "TIMEOUT", "FREQUENCY_LIMITED"})
# Our reading, not the reference's: an order WeChat does not know cannot be paid, once the
# window in which it could still appear has passed.
NOT_FOUND = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST"})


class Call(str, Enum):
    SUBMIT = "SUBMIT"  # POST /pay/micropay or /v3/pay/transactions/codepay
    QUERY = "QUERY"
    REVERSE = "REVERSE"


@dataclass(frozen=True)
class Answer:
    """One answer from WeChat, as stored: which call, when it came back, and what it said.

    `result` is SUCCESS, WeChat's err_code/code (v2 or v3 spelling), the trade_state for a
    query, or TIMEOUT when nothing came back. `recall` is the reverse answer's recall=Y.
    """

    call: Call
    at: datetime
    result: str
    recall: bool = False


class Step(str, Enum):
    DONE_PAID = "DONE_PAID"
    DONE_FAILED = "DONE_FAILED"  # nothing taken; the order is closed
    DONE_REVERSED = "DONE_REVERSED"
    QUERY = "QUERY"
    REVERSE = "REVERSE"
    MANUAL = "MANUAL"  # give up: mark for reconciliation by hand


@dataclass(frozen=True)
class Decision:
    step: Step
    at: datetime | None = None  # when to do it (QUERY/REVERSE); in the past means now
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.step in (Step.DONE_PAID, Step.DONE_FAILED, Step.DONE_REVERSED, Step.MANUAL)


def valid_auth_code(code: str) -> bool:
    """18 ASCII digits starting 10-15 (§9.3); anything else is not a WeChat payment code."""
    return isinstance(code, str) and AUTH_CODE.fullmatch(code) is not None


def _conclusion(answer: Answer, submitted_at: datetime) -> Decision | None:
    """The end of the flow if this answer settles it, else None."""
    result = answer.result.upper()
    if answer.call is Call.SUBMIT:
        if result in SUBMIT_PAID:
            return Decision(Step.DONE_PAID, reason=f"submit answered {result}")
        if result in DEFINITE_FAILURES:
            return Decision(Step.DONE_FAILED, reason=f"definite failure {result}: no query")
        return None
    if answer.call is Call.QUERY:
        if result in QUERY_PAID:
            return Decision(Step.DONE_PAID, reason=f"query answered {result}")
        if result == "CLOSED":
            return Decision(Step.DONE_FAILED, reason="query answered CLOSED")
        if result == "REVOKED":
            return Decision(Step.DONE_REVERSED, reason="query answered REVOKED (WeChat auto-revoke)")
        if result in NOT_FOUND and answer.at >= submitted_at + QUERY_WINDOW:
            return Decision(Step.DONE_FAILED, reason="WeChat has no such order after the window")
        return None
    # REVERSE
    if result == "SUCCESS":
        if answer.recall:
            return None
        return Decision(Step.DONE_REVERSED, reason="reverse answered recall=N")
    if result in NOT_FOUND:
        return Decision(Step.DONE_FAILED, reason="nothing to reverse: WeChat has no such order")
    if result in RETRYABLE_ERRORS or result == "USERPAYING":
        return None
    return Decision(Step.MANUAL, reason=f"reverse failed with {result}")


def _reverse(at: datetime, submitted_at: datetime, now: datetime, reverses: int,
             reason: str) -> Decision:
    """A reverse at `at`, but never sooner than WeChat allows, and only while it can work."""
    if reverses >= MAX_REVERSE_CALLS:
        return Decision(Step.MANUAL, reason=f"{reverses} reverse calls left it unclear")
    at = max(at, submitted_at + REVERSE_NOT_BEFORE)
    if max(at, now) >= submitted_at + REVERSE_VALID_FOR:
        return Decision(Step.MANUAL, reason="past the 7-day reverse limit: refund by hand")
    return Decision(Step.REVERSE, at, reason)


def _query_or_reverse(at: datetime, submitted_at: datetime, now: datetime, queried: bool,
                      reverses: int, reason: str) -> Decision:
    """Query at `at` if that is inside the window (or nothing was queried yet), else reverse."""
    if at < submitted_at + QUERY_WINDOW or not queried:
        return Decision(Step.QUERY, at, reason)
    return _reverse(at, submitted_at, now, reverses, "still unclear after the 45 s window")


def next_step(submitted_at: datetime, history: Sequence[Answer], now: datetime) -> Decision:
    """The next step for a payment-code order, from the answers stored so far.

    The first settling answer ends the flow (later ones are ignored). With no answer stored
    the submit's fate is unknown (a crash or a timeout), which §9.3 treats like SYSTEMERROR.
    """
    queried = False
    reverses = 0
    for answer in history:
        if answer.at < submitted_at:
            raise ValueError("an answer cannot come before the submit")
        settled = _conclusion(answer, submitted_at)
        if settled is not None:
            return settled
        queried = queried or answer.call is Call.QUERY
        reverses += answer.call is Call.REVERSE

    if not history:
        return _query_or_reverse(submitted_at + SYSTEM_ERROR_QUERY_DELAY, submitted_at, now,
                                 queried, reverses, "no answer to the submit: query")
    last = history[-1]
    result = last.result.upper()
    if last.call is Call.SUBMIT:
        if result == "USERPAYING":
            delay, why = QUERY_INTERVAL, "USERPAYING: poll"
        elif result in BANK_ERRORS:
            delay, why = BANK_ERROR_QUERY_DELAY, "BANKERROR: query at once"
        else:
            delay, why = SYSTEM_ERROR_QUERY_DELAY, f"{result}: unknown, query"
        return _query_or_reverse(last.at + delay, submitted_at, now, queried, reverses, why)
    if last.call is Call.QUERY:
        if result == "PAYERROR":
            return _reverse(last.at, submitted_at, now, reverses, "PAYERROR: end it by reversing")
        return _query_or_reverse(last.at + QUERY_INTERVAL, submitted_at, now, queried, reverses,
                                 f"query answered {result}: poll")
    # The last answer was a reverse that did not settle it.
    if result == "USERPAYING":  # §9.3: "正在支付中不能发起撤销"; keep querying
        return Decision(Step.QUERY, last.at + QUERY_INTERVAL, "reverse refused while paying: query")
    why = "recall=Y: reverse again" if result == "SUCCESS" else f"reverse {result}: again"
    return _reverse(last.at + REVERSE_RETRY_DELAY, submitted_at, now, reverses, why)


_ORDER_EVENTS = {Step.DONE_PAID: Event.SUCCESS, Step.DONE_FAILED: Event.SUBMIT_FAILED,
                 Step.DONE_REVERSED: Event.REVERSE_OK}


def order_event(decision: Decision) -> Event | None:
    """The state-machine event that records how the flow ended (None: nothing settled yet, or
    MANUAL, where the order keeps its state until reconciliation decides)."""
    return _ORDER_EVENTS.get(decision.step)
