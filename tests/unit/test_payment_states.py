"""payments/states.py: every state x every event, against a table written out by hand here."""
from __future__ import annotations

import itertools

import pytest

from payments.states import (
    PAID_FAMILY,
    TERMINAL,
    TRANSITIONS,
    Effect,
    Event,
    Outcome,
    State,
    apply,
    is_terminal,
)

S = State
ABBR = {"CR": S.CREATED, "UP": S.USERPAYING, "PE": S.PAYERROR, "PD": S.PAID,
        "PR": S.PARTIALLY_REFUNDED, "RF": S.REFUNDED, "CL": S.CLOSED, "RV": S.REVERSED}
EFFECTS = {"A": Effect.AWARD_POINTS, "R": Effect.REVERSE_POINTS, "E": Effect.END_AT_WECHAT}

COLUMNS = ["SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR", "ACCEPT",
           "REFUND_PARTIAL", "REFUND_FULL", "SUBMIT_FAILED", "CLOSE_OK", "REVERSE_OK", "EXPIRE"]
# Cell: "XX+fx" go to state XX running effects fx in order; "=" unchanged; "=E" stay and end
# the order at WeChat; "i" ignored (duplicate/late); "!" conflict (flag for reconciliation).
TABLE = """
CR  PD+A PD+A = CL RV UP PE = PR+AR RF+AR CL CL RV =E
UP  PD+A PD+A = CL RV =  PE = PR+AR RF+AR CL CL RV =E
PE  PD+A PD+A = CL RV i  i  = PR+AR RF+AR CL CL RV =E
PD  i    i    i i  !  i  i  i PR+R  RF+R  i  !  !  i
PR  i    i    i i  !  i  i  i PR+R  RF+R  i  !  !  i
RF  i    i    i i  !  i  i  i i     i     i  !  !  i
CL  !    !    i i  i  i  i  i !     !     i  i  i  i
RV  i    i    i i  i  i  i  i !     !     i  i  i  i
"""


def _expected() -> dict[tuple[State, Event], tuple[State | None, tuple[Effect, ...], Outcome]]:
    cells = {}
    for line in TABLE.strip().splitlines():
        abbr, *row = line.split()
        assert len(row) == len(COLUMNS), line
        state = ABBR[abbr]
        for column, cell in zip(COLUMNS, row):
            event = Event[column]
            if cell == "i":
                cells[state, event] = (state, (), Outcome.IGNORED)
            elif cell == "!":
                cells[state, event] = (state, (Effect.RECONCILE,), Outcome.CONFLICT)
            elif cell == "=":
                cells[state, event] = (state, (), Outcome.UNCHANGED)
            elif cell == "=E":
                cells[state, event] = (state, (Effect.END_AT_WECHAT,), Outcome.APPLIED)
            else:
                target, _, fx = cell.partition("+")
                cells[state, event] = (ABBR[target], tuple(EFFECTS[c] for c in fx),
                                       Outcome.APPLIED)
    return cells


EXPECTED = _expected()
ALL_PAIRS = list(itertools.product(State, Event))


def test_the_table_covers_every_state_and_event():
    assert set(EXPECTED) == set(ALL_PAIRS)
    assert {s: set(row) for s, row in TRANSITIONS.items()} == {s: set(Event) for s in State}


@pytest.mark.parametrize("state, event", ALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in ALL_PAIRS])
def test_every_state_and_event(state, event):
    new_state, effects, outcome = EXPECTED[state, event]
    t = apply(state, event)
    assert (t.new_state, t.effects, t.outcome) == (new_state, effects, outcome)
    assert t.reason  # every cell says why
    assert t.changed is (outcome is Outcome.APPLIED)


@pytest.mark.parametrize("state, event", ALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in ALL_PAIRS])
def test_invariants_hold_for_every_cell(state, event):
    t = apply(state, event)
    if t.outcome in (Outcome.IGNORED, Outcome.UNCHANGED, Outcome.CONFLICT):
        assert t.new_state is state
    if t.outcome is Outcome.CONFLICT:
        assert t.effects == (Effect.RECONCILE,)
    if state in TERMINAL and t.new_state is not state:
        # The only way out of an end: a paid order moving on to a refund state.
        assert state in PAID_FAMILY and t.new_state in PAID_FAMILY
    if Effect.AWARD_POINTS in t.effects:
        assert state not in TERMINAL and t.new_state in PAID_FAMILY
    if Effect.REVERSE_POINTS in t.effects:
        assert t.new_state in (S.PARTIALLY_REFUNDED, S.REFUNDED)
        if Effect.AWARD_POINTS in t.effects:  # award first, then take back
            assert t.effects.index(Effect.AWARD_POINTS) < t.effects.index(Effect.REVERSE_POINTS)


@pytest.mark.parametrize("state, event", ALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in ALL_PAIRS])
def test_the_same_event_twice_changes_nothing_more(state, event):
    first = apply(state, event)
    second = apply(first.new_state, event)
    assert second.new_state is first.new_state
    assert Effect.AWARD_POINTS not in second.effects


@pytest.mark.parametrize("first", list(Event), ids=lambda e: e.value)
def test_points_are_awarded_at_most_once_whatever_follows(first):
    """From CREATED, every run of four events: AWARD_POINTS at most once, and exactly once
    when the order ends in a paid state."""
    for rest in itertools.product(Event, repeat=3):
        state, awards, reversals_before_award = S.CREATED, 0, 0
        for event in (first, *rest):
            t = apply(state, event)
            for effect in t.effects:
                if effect is Effect.AWARD_POINTS:
                    awards += 1
                elif effect is Effect.REVERSE_POINTS and awards == 0:
                    reversals_before_award += 1
            state = t.new_state
        assert awards <= 1, (first, rest)
        assert reversals_before_award == 0, (first, rest)
        assert (awards == 1) is (state in PAID_FAMILY), (first, rest, state)


def test_the_issue_scenarios():
    # Notification retried: the second SUCCESS is acknowledged and ignored.
    paid = apply("CREATED", "SUCCESS")
    assert paid.effects == (Effect.AWARD_POINTS,)
    assert apply(paid.new_state, "SUCCESS").outcome is Outcome.IGNORED
    # A late NOTPAY or CLOSED after payment changes nothing.
    assert apply("PAID", "NOTPAY").outcome is Outcome.IGNORED
    assert apply("PAID", "CLOSED").outcome is Outcome.IGNORED
    # Refund notification before the payment one: payment implied, points awarded then
    # partly taken back, and the payment notification that follows is a duplicate.
    early = apply("CREATED", "REFUND_PARTIAL")
    assert early.new_state is S.PARTIALLY_REFUNDED
    assert early.effects == (Effect.AWARD_POINTS, Effect.REVERSE_POINTS)
    assert apply(early.new_state, "SUCCESS").outcome is Outcome.IGNORED
    # Money on an order we closed: a conflict for reconciliation, never an exception.
    assert apply("CLOSED", "SUCCESS").outcome is Outcome.CONFLICT


def test_strings_and_enums_are_both_accepted_and_unknown_values_are_bugs():
    assert apply("USERPAYING", "SUCCESS") == apply(S.USERPAYING, Event.SUCCESS)
    with pytest.raises(ValueError):
        apply("PAID", "TRANSACTION.SUCCESS")
    with pytest.raises(ValueError):
        apply("SETTLED", "SUCCESS")


@pytest.mark.parametrize("state, terminal", [(S.CREATED, False), (S.USERPAYING, False),
                                             (S.PAYERROR, False), (S.PAID, True),
                                             (S.PARTIALLY_REFUNDED, True), (S.REFUNDED, True),
                                             (S.CLOSED, True), (S.REVERSED, True)])
def test_terminal_states(state, terminal):
    assert is_terminal(state) is terminal
