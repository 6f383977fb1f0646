"""payments/refunds.py: the cap, idempotency by out_refund_no, proportional points."""
from __future__ import annotations

import pytest

from payments.refunds import (
    Refund,
    RefundStatus,
    Verdict,
    apply_refund_status,
    committed_fen,
    decide_refund,
    order_refund_event,
    points_to_reverse,
    refunded_fen,
)
from payments.states import Event

R = RefundStatus
PAID = 10_000  # 100.00 yuan


def test_refunds_add_up_to_exactly_the_paid_amount_then_are_refused():
    refunds: list[Refund] = []
    for number, amount in [("R1", 3_000), ("R2", 2_500), ("R3", 4_500)]:
        decision = decide_refund(PAID, refunds, number, amount)
        assert decision.verdict is Verdict.NEW, decision
        refunds.append(Refund(number, amount, R.SUCCESS if number == "R1" else R.PROCESSING))
    assert committed_fen(refunds) == PAID
    refused = decide_refund(PAID, refunds, "R4", 1)
    assert refused.verdict is Verdict.REFUSED and refused.refundable_fen == 0


@pytest.mark.parametrize("existing_status, amount, verdict", [
    (R.PROCESSING, 6_001, Verdict.REFUSED),  # PROCESSING holds its amount
    (R.SUCCESS, 6_001, Verdict.REFUSED),     # SUCCESS holds its amount
    (R.ABNORMAL, 6_001, Verdict.REFUSED),    # ABNORMAL still owes the shopper
    (R.CLOSED, 6_001, Verdict.NEW),          # CLOSED gives the amount back
    (R.CLOSED, 10_000, Verdict.NEW),
    (R.CLOSED, 10_001, Verdict.REFUSED),
    (R.PROCESSING, 6_000, Verdict.NEW),      # exactly the rest
])
def test_what_counts_against_the_paid_amount(existing_status, amount, verdict):
    refunds = [Refund("R1", 4_000, existing_status)]
    assert decide_refund(PAID, refunds, "R2", amount).verdict is verdict


@pytest.mark.parametrize("status", list(RefundStatus))
def test_same_number_same_amount_returns_the_existing_refund(status):
    existing = Refund("R1", 10_000, status)
    decision = decide_refund(PAID, [existing], "R1", 10_000)
    assert decision.verdict is Verdict.EXISTING and decision.existing == existing


def test_same_number_different_amount_is_refused():
    existing = Refund("R1", 3_000, R.PROCESSING)
    decision = decide_refund(PAID, [existing], "R1", 2_000)
    assert decision.verdict is Verdict.REFUSED and decision.existing == existing


@pytest.mark.parametrize("paid, number, amount", [
    (PAID, "R1", 0), (PAID, "R1", -5), (PAID, "R1", 10.5), (PAID, "R1", True),
    (PAID, "", 100), (0, "R1", 100), (-1, "R1", 100),
])
def test_bad_requests_are_refused(paid, number, amount):
    assert decide_refund(paid, [], number, amount).verdict is Verdict.REFUSED


@pytest.mark.parametrize("refunds, event", [
    ([], None),
    ([Refund("R1", 10_000, R.PROCESSING)], None),
    ([Refund("R1", 4_000, R.SUCCESS)], Event.REFUND_PARTIAL),
    ([Refund("R1", 4_000, R.SUCCESS), Refund("R2", 6_000, R.PROCESSING)], Event.REFUND_PARTIAL),
    ([Refund("R1", 4_000, R.SUCCESS), Refund("R2", 6_000, R.SUCCESS)], Event.REFUND_FULL),
    ([Refund("R1", 10_000, R.CLOSED), Refund("R2", 10_000, R.SUCCESS)], Event.REFUND_FULL),
])
def test_order_refund_event_follows_money_actually_returned(refunds, event):
    assert order_refund_event(PAID, refunds) is event


def test_refunded_and_committed_differ_by_what_is_in_flight():
    refunds = [Refund("R1", 1_000, R.SUCCESS), Refund("R2", 2_000, R.PROCESSING),
               Refund("R3", 3_000, R.CLOSED), Refund("R4", 500, R.ABNORMAL)]
    assert (refunded_fen(refunds), committed_fen(refunds)) == (1_000, 3_500)


@pytest.mark.parametrize("points, paid, refunded, already, expected", [
    (100, 10_000, 2_500, 0, 25),
    (100, 10_000, 10_000, 25, 75),     # the rest on the full refund
    (5, 10_000, 5_000, 0, 2),          # floor(2.5)
    (5, 10_000, 10_000, 2, 3),         # the cumulative rule gives back the rounding
    (7, 3, 1, 0, 2),                   # floor(7/3)
    (7, 3, 2, 2, 2),                   # floor(14/3)=4, minus 2
    (7, 3, 3, 4, 3),
    (100, 10_000, 2_500, 25, 0),       # repeat: nothing more
    (100, 10_000, 2_500, 40, 0),       # never negative
    (100, 10_000, 12_000, 0, 100),     # never more than awarded
    (0, 10_000, 10_000, 0, 0),
    (100, 0, 0, 0, 0),
])
def test_points_to_reverse(points, paid, refunded, already, expected):
    assert points_to_reverse(points, paid, refunded, already) == expected


@pytest.mark.parametrize("points, paid", [(5, 10_000), (7, 3), (101, 997), (1, 100)])
def test_a_series_of_refunds_takes_back_exactly_all_the_points(points, paid):
    parts = [paid // 3, paid // 3, paid - 2 * (paid // 3)]
    reversed_total, refunded = 0, 0
    for part in parts:
        refunded += part
        step = points_to_reverse(points, paid, refunded, reversed_total)
        assert step >= 0
        reversed_total += step
        assert reversed_total == points * refunded // paid
    assert reversed_total == points


@pytest.mark.parametrize("current, reported, status, changed, conflict", [
    (R.PROCESSING, R.SUCCESS, R.SUCCESS, True, False),
    (R.PROCESSING, R.CLOSED, R.CLOSED, True, False),
    (R.PROCESSING, R.ABNORMAL, R.ABNORMAL, True, False),
    (R.PROCESSING, R.PROCESSING, R.PROCESSING, False, False),
    (R.ABNORMAL, R.SUCCESS, R.SUCCESS, True, False),
    (R.ABNORMAL, R.PROCESSING, R.PROCESSING, True, False),
    (R.ABNORMAL, R.CLOSED, R.CLOSED, True, False),
    (R.ABNORMAL, R.ABNORMAL, R.ABNORMAL, False, False),
    (R.SUCCESS, R.SUCCESS, R.SUCCESS, False, False),      # duplicate notification
    (R.SUCCESS, R.PROCESSING, R.SUCCESS, False, False),   # late query answer
    (R.SUCCESS, R.ABNORMAL, R.SUCCESS, False, False),
    (R.SUCCESS, R.CLOSED, R.SUCCESS, False, True),        # contradiction
    (R.CLOSED, R.CLOSED, R.CLOSED, False, False),
    (R.CLOSED, R.PROCESSING, R.CLOSED, False, False),
    (R.CLOSED, R.ABNORMAL, R.CLOSED, False, False),
    (R.CLOSED, R.SUCCESS, R.CLOSED, False, True),
])
def test_refund_status_moves(current, reported, status, changed, conflict):
    move = apply_refund_status(current, reported.value)
    assert (move.status, move.changed, move.conflict) == (status, changed, conflict)
