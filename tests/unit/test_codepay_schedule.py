"""payments/codepay.py: the payment-code schedule against a simulated WeChat (no clock, no sleep)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from payments.codepay import (
    MAX_REVERSE_CALLS,
    Answer,
    Call,
    Decision,
    Step,
    next_step,
    order_event,
    valid_auth_code,
)
from payments.states import Event, State, apply

T0 = datetime(2026, 11, 22, 2, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def secs(when: datetime) -> float:
    return (when - T0).total_seconds()


# A simulated WeChat: given the call and the second (from submit) it is made, what it answers.
WeChat = Callable[[Call, float], Answer]


def run(wechat: WeChat, limit: int = 60) -> tuple[Decision, list[Answer], list[Decision]]:
    """Drive the flow as a worker would: submit at 0, then do each decision at its time."""
    history = [wechat(Call.SUBMIT, 0.0)]
    decisions = []
    for _ in range(limit):
        now = history[-1].at
        decision = next_step(T0, history, now)
        decisions.append(decision)
        if decision.done:
            return decision, history, decisions
        call = Call.QUERY if decision.step is Step.QUERY else Call.REVERSE
        history.append(wechat(call, secs(max(now, decision.at))))
    raise AssertionError("the schedule did not end")


def calls(history: list[Answer]) -> list[tuple[str, float, str]]:
    return [(a.call.value, secs(a.at), a.result + ("/recall" if a.recall else "")) for a in history]


def userpaying_then(paid_from: float | None, reverse_answers: tuple[str, ...] = ("SUCCESS",),
                    submit: str = "USERPAYING") -> WeChat:
    """Submit answers `submit`; queries say USERPAYING until `paid_from` s, then SUCCESS.
    Reverse answers are taken in turn; "Y" means SUCCESS with recall=Y."""
    reverses = iter(reverse_answers)

    def answer(call: Call, t: float) -> Answer:
        if call is Call.SUBMIT:
            return Answer(call, at(t), submit)
        if call is Call.QUERY:
            paid = paid_from is not None and t >= paid_from
            return Answer(call, at(t), "SUCCESS" if paid else "USERPAYING")
        result = next(reverses)
        return Answer(call, at(t), "SUCCESS" if result == "Y" else result, recall=result == "Y")

    return answer


def test_userpaying_for_10_seconds_then_success():
    final, history, _ = run(userpaying_then(paid_from=10))
    assert final.step is Step.DONE_PAID
    assert calls(history) == [("SUBMIT", 0, "USERPAYING"), ("QUERY", 5, "USERPAYING"),
                              ("QUERY", 10, "SUCCESS")]


def test_userpaying_until_the_window_closes_is_reversed_at_45_seconds():
    final, history, _ = run(userpaying_then(paid_from=None))
    assert final.step is Step.DONE_REVERSED
    queries = [secs(a.at) for a in history if a.call is Call.QUERY]
    assert queries == [5, 10, 15, 20, 25, 30, 35, 40]  # polling stays inside the 45 s window
    assert [(a.call, secs(a.at)) for a in history[-1:]] == [(Call.REVERSE, 45)]


@pytest.mark.parametrize("submit, answered_at, first_query", [
    ("SYSTEMERROR", 0, 5),    # §9.3 step 2: wait 5 s
    ("SYSTEM_ERROR", 0, 5),   # the v3 spelling
    ("TIMEOUT", 8, 13),       # no response: as SYSTEMERROR, counted from when we gave up
    ("BANKERROR", 2, 2),      # §9.3 step 4: query at once
    ("SOMETHING_NEW", 1, 6),  # an unknown code is unknown, not a failure
])
def test_unknown_submit_answers_are_queried(submit, answered_at, first_query):
    decision = next_step(T0, [Answer(Call.SUBMIT, at(answered_at), submit)], at(answered_at))
    assert decision == Decision(Step.QUERY, at(first_query), decision.reason)


def test_systemerror_on_submit_then_the_query_finds_it_paid():
    def wechat(call: Call, t: float) -> Answer:
        return Answer(call, at(t), "SYSTEMERROR" if call is Call.SUBMIT else "SUCCESS")

    final, history, _ = run(wechat)
    assert final.step is Step.DONE_PAID
    assert calls(history) == [("SUBMIT", 0, "SYSTEMERROR"), ("QUERY", 5, "SUCCESS")]


def test_reverse_answering_recall_y_twice_then_success():
    final, history, _ = run(userpaying_then(None, reverse_answers=("Y", "Y", "SUCCESS")))
    assert final.step is Step.DONE_REVERSED
    reverses = [(secs(a.at), a.recall) for a in history if a.call is Call.REVERSE]
    assert reverses == [(45, True), (50, True), (55, False)]


def test_reverse_refused_while_paying_goes_back_to_querying():
    final, history, _ = run(userpaying_then(paid_from=50, reverse_answers=("USERPAYING",)))
    assert final.step is Step.DONE_PAID
    assert calls(history)[-2:] == [("REVERSE", 45, "USERPAYING"), ("QUERY", 50, "SUCCESS")]


def test_reverse_that_never_settles_goes_to_reconciliation():
    final, history, _ = run(userpaying_then(None, reverse_answers=("Y",) * 50))
    assert final.step is Step.MANUAL
    assert sum(a.call is Call.REVERSE for a in history) == MAX_REVERSE_CALLS


@pytest.mark.parametrize("code", ["REVERSE_EXPIRE", "INVALID_TRANSACTIONID", "SIGNERROR"])
def test_a_definite_reverse_error_goes_to_reconciliation(code):
    final, _, _ = run(userpaying_then(None, reverse_answers=(code,)))
    assert final.step is Step.MANUAL


@pytest.mark.parametrize("code", ["SYSTEMERROR", "TIMEOUT", "FREQUENCY_LIMITED"])
def test_a_failed_reverse_call_is_retried(code):
    final, history, _ = run(userpaying_then(None, reverse_answers=(code, "SUCCESS")))
    assert final.step is Step.DONE_REVERSED
    assert [secs(a.at) for a in history if a.call is Call.REVERSE] == [45, 50]


@pytest.mark.parametrize("code, step", [
    ("SUCCESS", Step.DONE_PAID), ("ORDERPAID", Step.DONE_PAID),
    ("NOTENOUGH", Step.DONE_FAILED), ("AUTHCODEEXPIRE", Step.DONE_FAILED),
    ("AUTH_CODE_INVALID", Step.DONE_FAILED), ("ORDERREVERSED", Step.DONE_FAILED),
    ("PARAM_ERROR", Step.DONE_FAILED), ("SIGN_ERROR", Step.DONE_FAILED),
])
def test_submit_answers_that_settle_it_need_no_query(code, step):
    assert next_step(T0, [Answer(Call.SUBMIT, at(1), code)], at(1)).step is step


@pytest.mark.parametrize("result, step", [
    ("SUCCESS", Step.DONE_PAID), ("REFUND", Step.DONE_PAID), ("CLOSED", Step.DONE_FAILED),
    ("REVOKED", Step.DONE_REVERSED),
])
def test_query_answers_that_settle_it(result, step):
    history = [Answer(Call.SUBMIT, at(0), "USERPAYING"), Answer(Call.QUERY, at(5), result)]
    assert next_step(T0, history, at(5)).step is step


def test_payerror_is_reversed_but_never_sooner_than_15_seconds():
    history = [Answer(Call.SUBMIT, at(0), "BANKERROR"), Answer(Call.QUERY, at(1), "PAYERROR")]
    assert next_step(T0, history, at(1)) == Decision(Step.REVERSE, at(15),
                                                     next_step(T0, history, at(1)).reason)


def test_a_submit_answered_after_the_window_is_queried_before_any_reverse():
    history = [Answer(Call.SUBMIT, at(50), "TIMEOUT")]
    assert next_step(T0, history, at(50)).step is Step.QUERY
    history.append(Answer(Call.QUERY, at(55), "SYSTEMERROR"))
    assert next_step(T0, history, at(55)) == Decision(Step.REVERSE, at(60),
                                                      next_step(T0, history, at(55)).reason)


def test_no_stored_answer_is_treated_as_a_timeout():
    assert next_step(T0, [], at(0)) == Decision(Step.QUERY, at(5), next_step(T0, [], at(0)).reason)


@pytest.mark.parametrize("query_at, step", [(20, Step.QUERY), (45, Step.DONE_FAILED)])
def test_order_not_found_is_failed_only_after_the_window(query_at, step):
    history = [Answer(Call.SUBMIT, at(0), "TIMEOUT"), Answer(Call.QUERY, at(query_at), "ORDER_NOT_EXIST")]
    assert next_step(T0, history, at(query_at)).step is step


def test_answers_after_the_settling_one_are_ignored():
    history = [Answer(Call.SUBMIT, at(0), "USERPAYING"), Answer(Call.QUERY, at(5), "SUCCESS"),
               Answer(Call.QUERY, at(10), "CLOSED")]
    assert next_step(T0, history, at(10)).step is Step.DONE_PAID


def test_past_the_7_day_reverse_limit_it_is_handed_to_reconciliation():
    history = [Answer(Call.SUBMIT, at(0), "USERPAYING"), Answer(Call.QUERY, at(40), "USERPAYING")]
    assert next_step(T0, history, at(50)).step is Step.REVERSE
    assert next_step(T0, history, T0 + timedelta(days=8)).step is Step.MANUAL


def test_an_answer_before_the_submit_is_rejected():
    with pytest.raises(ValueError):
        next_step(T0, [Answer(Call.SUBMIT, at(-1), "SUCCESS")], at(0))


SCENARIOS: dict[str, Callable[[], WeChat]] = {  # fresh simulators: reverse answers are consumed
    "paid-after-10s": lambda: userpaying_then(paid_from=10),
    "reversed": lambda: userpaying_then(paid_from=None),
    "recall-twice": lambda: userpaying_then(None, reverse_answers=("Y", "Y", "SUCCESS")),
    "systemerror-then-paid": lambda: userpaying_then(paid_from=0, submit="SYSTEMERROR"),
    "bankerror-then-reversed": lambda: userpaying_then(paid_from=None, submit="BANKERROR"),
    "reverse-refused-then-paid": lambda: userpaying_then(paid_from=50, reverse_answers=("USERPAYING",)),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_worker_killed_at_any_point_resumes_with_the_same_decision(name):
    """The decision is a pure function of the stored answers: a new worker picking the order
    up later (within the reverse limit) decides the same thing, at the same time."""
    _, history, decisions = run(SCENARIOS[name]())
    for k, decision in enumerate(decisions, start=1):
        stored = list(history[:k])
        for late in (timedelta(0), timedelta(seconds=3), timedelta(minutes=10), timedelta(days=6)):
            assert next_step(T0, stored, stored[-1].at + late) == decision, (name, k, late)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_run_keeps_wechats_limits(name):
    _, history, _ = run(SCENARIOS[name]())
    for i, answer in enumerate(history):
        if answer.call is Call.REVERSE:
            assert secs(answer.at) >= 15  # never sooner than WeChat allows
        if answer.call is Call.QUERY and secs(answer.at) >= 45:
            before = history[i - 1]
            # Past the window a query only follows a refused reverse (or a very late submit).
            assert before.call in (Call.REVERSE, Call.SUBMIT) and before.result in ("USERPAYING", "TIMEOUT")


@pytest.mark.parametrize("code, ok", [
    ("134567890123456789", True), ("101234567890123456", True), ("151234567890123456", True),
    ("161234567890123456", False), ("091234567890123456", False),   # prefix outside 10-15
    ("13456789012345678", False), ("1345678901234567890", False),   # 17 and 19 digits
    ("13456789012345678a", False), ("13 4567890123456789", False),
    ("134567890123456789\n", False), ("１３4567890123456789", False),  # full-width digits
    ("", False),
])
def test_auth_code(code, ok):
    assert valid_auth_code(code) is ok


def test_auth_code_must_be_a_string():
    assert valid_auth_code(134567890123456789) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("name, state", [
    ("paid-after-10s", State.PAID), ("reversed", State.REVERSED), ("recall-twice", State.REVERSED),
    ("systemerror-then-paid", State.PAID), ("reverse-refused-then-paid", State.PAID),
])
def test_every_settled_flow_leaves_the_order_paid_closed_or_reversed(name, state):
    final, _, _ = run(SCENARIOS[name]())
    assert apply(State.USERPAYING, order_event(final)).new_state is state


@pytest.mark.parametrize("step, event", [
    (Step.DONE_PAID, Event.SUCCESS), (Step.DONE_FAILED, Event.SUBMIT_FAILED),
    (Step.DONE_REVERSED, Event.REVERSE_OK), (Step.MANUAL, None), (Step.QUERY, None),
    (Step.REVERSE, None),
])
def test_order_event(step, event):
    assert order_event(Decision(step, T0)) is event
