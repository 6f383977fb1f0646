"""WeChat's customer-service windows as the desk computes them (reference §5.2): 48 h and 5
messages after a message; 1 minute and 3 after a menu click, a follow or a scan; 1 minute and 2
after the mini-program's contact entry; a message window outlives an event window beside it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from service_desk.windows import SentCounter, current

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)


def sent(*offsets_seconds: float) -> SentCounter:
    return SentCounter([T0 + timedelta(seconds=s) for s in offsets_seconds])


def test_a_message_opens_five_answers_for_48_hours():
    window = current(T0, None, sent(), T0 + timedelta(minutes=5))
    assert (window.open, window.kind, window.remaining) == (True, "message", 5)
    assert window.closes_at == T0 + timedelta(hours=48)


def test_at_the_budgets_edge_one_answer_is_left_then_none():
    assert current(T0, None, sent(1, 2, 3, 4), T0 + timedelta(minutes=1)).remaining == 1
    shut = current(T0, None, sent(1, 2, 3, 4, 5), T0 + timedelta(minutes=1))
    assert (shut.open, shut.remaining) == (False, 0)
    assert "45047" in shut.reason


def test_answers_sent_before_the_last_message_do_not_count():
    window = current(T0, None, sent(-60, -30, -10, -5, -1), T0 + timedelta(seconds=1))
    assert window.remaining == 5


def test_after_48_hours_the_window_is_shut_with_45015():
    shut = current(T0, None, sent(), T0 + timedelta(hours=48, seconds=1))
    assert not shut.open
    assert "48 hours" in shut.reason and "45015" in shut.reason
    assert current(T0, None, sent(), T0 + timedelta(hours=47, minutes=59)).open


def test_a_menu_click_opens_three_for_one_minute():
    window = current(None, ("click", T0), sent(), T0 + timedelta(seconds=30))
    assert (window.open, window.kind, window.remaining) == (True, "event", 3)
    assert not current(None, ("click", T0), sent(), T0 + timedelta(seconds=61)).open
    assert current(None, ("click", T0), sent(1, 2, 3), T0 + timedelta(seconds=10)).remaining == 0


def test_the_mini_program_contact_entry_opens_two_for_one_minute():
    window = current(None, ("user_enter_tempsession", T0), sent(), T0 + timedelta(seconds=5))
    assert (window.kind, window.remaining) == ("mp_session", 2)


def test_an_open_message_window_wins_over_a_later_click():
    window = current(T0, ("click", T0 + timedelta(hours=1)), sent(), T0 + timedelta(hours=1, seconds=5))
    assert (window.kind, window.remaining) == ("message", 5)


def test_events_that_open_no_window_open_none():
    assert not current(None, ("view", T0), sent(), T0 + timedelta(seconds=5)).open
    never = current(None, None, sent(), T0)
    assert not never.open and "has not written" in never.reason


def test_a_shopper_who_unfollowed_gets_nothing():
    shut = current(T0, None, sent(), T0 + timedelta(minutes=1), following=False)
    assert not shut.open and "unfollowed" in shut.reason
