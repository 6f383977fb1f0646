"""Refund rules: pure, no database, no network. Money in integer fen.

An order may be refunded several times, partly or fully, but never for more than was paid.
A refund is identified by our out_refund_no, which WeChat also uses to make the refund call
idempotent (reference §10.5 refund row), so asking again with the same number must give back
the same refund, never a second one.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Sequence

from payments.states import Event


class RefundStatus(str, Enum):
    """WeChat's refund status (§10.3 refund_status, §10.5 refund response)."""

    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    ABNORMAL = "ABNORMAL"


# Refunds that hold part of the paid amount. The issue names PROCESSING and SUCCESS; ABNORMAL
# counts too, because WeChat still owes the shopper that money (the refund can be re-sent to
# another account), so letting a new refund take it could pay out more than was paid.
# Only CLOSED gives the amount back.
HOLDING = frozenset({RefundStatus.PROCESSING, RefundStatus.SUCCESS, RefundStatus.ABNORMAL})


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    amount_fen: int
    status: RefundStatus = RefundStatus.PROCESSING


class Verdict(str, Enum):
    NEW = "NEW"  # allowed: create it and call WeChat
    EXISTING = "EXISTING"  # same number, same amount: the request was already made
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class RefundDecision:
    verdict: Verdict
    reason: str
    existing: Refund | None = None
    refundable_fen: int = 0  # what is left to refund before this request


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def committed_fen(refunds: Iterable[Refund]) -> int:
    """Money already promised back: every refund still holding its amount."""
    return sum(r.amount_fen for r in refunds if RefundStatus(r.status) in HOLDING)


def refunded_fen(refunds: Iterable[Refund]) -> int:
    """Money actually returned (SUCCESS only): what the order state and the points follow."""
    return sum(r.amount_fen for r in refunds if RefundStatus(r.status) is RefundStatus.SUCCESS)


def decide_refund(paid_fen: int, refunds: Sequence[Refund], out_refund_no: str,
                  amount_fen: int) -> RefundDecision:
    """May we ask WeChat for this refund? Idempotent by out_refund_no, capped at what was paid."""
    if not _is_fen(paid_fen) or paid_fen <= 0:
        return RefundDecision(Verdict.REFUSED, "the order has no paid amount")
    left = paid_fen - committed_fen(refunds)
    for refund in refunds:
        if refund.out_refund_no == out_refund_no:
            if refund.amount_fen == amount_fen:
                return RefundDecision(Verdict.EXISTING, "same refund number and amount",
                                      refund, left)
            return RefundDecision(Verdict.REFUSED,
                                  "refund number already used for a different amount",
                                  refund, left)
    if not out_refund_no:
        return RefundDecision(Verdict.REFUSED, "a refund number is required", None, left)
    if not _is_fen(amount_fen) or amount_fen <= 0:
        return RefundDecision(Verdict.REFUSED, "the amount must be a positive number of fen",
                              None, left)
    if amount_fen > left:
        return RefundDecision(Verdict.REFUSED, f"only {left} fen left to refund", None, left)
    return RefundDecision(Verdict.NEW, "within what was paid", None, left)


def order_refund_event(paid_fen: int, refunds: Iterable[Refund]) -> Event | None:
    """The order event after a refund reached SUCCESS: partial, full, or none yet."""
    done = refunded_fen(refunds)
    if done <= 0:
        return None
    return Event.REFUND_FULL if done >= paid_fen else Event.REFUND_PARTIAL


def points_to_reverse(points_awarded: int, paid_fen: int, refunded_total_fen: int,
                      already_reversed: int) -> int:
    """Points to take back now, so the total taken stays proportional to the money refunded.

    floor(points x cumulative refunded / paid) minus what earlier refunds took back. Working on
    the cumulative amount (not each refund alone) keeps the rounding from drifting: two half
    refunds of 5 points take back 2 then 3, and a full refund always takes back everything.
    Never negative, so a repeat or an out-of-order call takes nothing.
    """
    if paid_fen <= 0 or points_awarded <= 0:
        return 0
    refunded = min(max(refunded_total_fen, 0), paid_fen)
    due = points_awarded * refunded // paid_fen
    return max(0, due - already_reversed)


# Refund status moves (for the refund row, by notification or query). ABNORMAL is not an end:
# the merchant can re-send it, so it may still turn PROCESSING, SUCCESS or CLOSED.
_REFUND_MOVES: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PROCESSING: frozenset({RefundStatus.SUCCESS, RefundStatus.CLOSED,
                                        RefundStatus.ABNORMAL}),
    RefundStatus.ABNORMAL: frozenset({RefundStatus.PROCESSING, RefundStatus.SUCCESS,
                                      RefundStatus.CLOSED}),
    RefundStatus.SUCCESS: frozenset(),
    RefundStatus.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class RefundMove:
    status: RefundStatus
    changed: bool  # True only the first time a status is reached: act on it once
    conflict: bool = False  # an end state contradicted (e.g. CLOSED after SUCCESS)


def apply_refund_status(current: RefundStatus | str, reported: RefundStatus | str) -> RefundMove:
    """A refund's new status; duplicates and late news leave it alone, contradictions flag it."""
    cur, new = RefundStatus(current), RefundStatus(reported)
    if new is cur:
        return RefundMove(cur, changed=False)
    if new in _REFUND_MOVES[cur]:
        return RefundMove(new, changed=True)
    if cur in (RefundStatus.SUCCESS, RefundStatus.CLOSED):
        # PROCESSING/ABNORMAL after an end is late news; the other end is a contradiction.
        ended = {RefundStatus.SUCCESS, RefundStatus.CLOSED}
        return RefundMove(cur, changed=False, conflict=new in ended)
    return RefundMove(cur, changed=False)
