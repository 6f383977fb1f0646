"""The slot rules as pure functions: the grid a service's duration and buffer draw over a day's
hours, which exception day wins, the store's day of an instant near midnight, the bookable window
(lead time and horizon), each refusal's words, and the hours an operator writes."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from reservations import setup, slots
from reservations.exceptions import BadTime
from reservations.models import Service
from reservations.slots import CLOSED, DayHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
THURSDAY = date(2026, 12, 3)


def service(duration: int = 45, buffer: int = 15, lead: int = 60, horizon: int = 30) -> Service:
    return Service(code="beauty", name="美容咨询", counter_code="LANCOME", duration_minutes=duration,
                   buffer_minutes=buffer, lead_minutes=lead, horizon_days=horizon)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


def hhmm(starts: list[datetime]) -> list[str]:
    return [s.astimezone(SHANGHAI).strftime("%H:%M") for s in starts]


def test_slots_start_every_duration_plus_buffer_from_opening_and_end_by_closing():
    starts = slots.day_starts(service(45, 15), DayHours(600, 1320), THURSDAY)
    assert hhmm(starts) == [f"{h}:00" for h in range(10, 22)]  # 21:00 + 45 min ends 21:45
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in starts)  # handed back in UTC
    assert starts[0] == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    # A service whose end falls exactly at closing still fits; one that would run past it does not.
    assert hhmm(slots.day_starts(service(60, 0), DayHours(600, 720), THURSDAY)) == ["10:00", "11:00"]
    assert hhmm(slots.day_starts(service(50, 20), DayHours(600, 780), THURSDAY)) == ["10:00", "11:10"]
    assert slots.day_starts(service(), CLOSED, THURSDAY) == []
    assert slots.day_starts(service(120, 0), DayHours(600, 660), THURSDAY) == []  # longer than the day


def test_a_counters_own_exception_wins_over_the_store_wide_one_which_wins_over_the_week():
    usual = {3: DayHours(600, 1320)}  # Thursdays
    late = DayHours(600, 1410, "周五夜场")
    own = DayHours(720, 1200, "盘点")
    exceptions = {("*", THURSDAY): late, ("LANCOME", THURSDAY): own, ("*", THURSDAY + timedelta(days=7)): CLOSED}
    assert slots._pick(THURSDAY, "LANCOME", usual, exceptions) == own
    assert slots._pick(THURSDAY, "DIOR", usual, exceptions) == late
    assert slots._pick(THURSDAY + timedelta(days=7), "LANCOME", usual, exceptions).closed  # a store holiday
    assert slots._pick(THURSDAY + timedelta(days=14), "LANCOME", usual, exceptions) == DayHours(600, 1320)
    assert slots._pick(THURSDAY + timedelta(days=1), "LANCOME", usual, exceptions).closed  # no Friday hours


def test_an_instant_belongs_to_the_store_day_of_shanghai_not_of_utc():
    assert slots.store_day(datetime(2026, 12, 3, 15, 30, tzinfo=UTC)) == THURSDAY  # 23:30 there
    assert slots.store_day(datetime(2026, 12, 3, 16, 30, tzinfo=UTC)) == THURSDAY + timedelta(days=1)  # 00:30
    assert slots.store_midnight(THURSDAY) == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    assert slots.at_store_time(THURSDAY, 23 * 60 + 30) == datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    # No daylight saving: every store day of the year is 24 hours and starts at 16:00 UTC.
    for month in range(1, 13):
        day = date(2026, month, 15)
        assert slots.store_midnight(day + timedelta(days=1)) - slots.store_midnight(day) == timedelta(hours=24)
        assert slots.store_midnight(day).hour == 16


def test_the_bookable_window_runs_from_the_lead_time_to_the_end_of_the_horizons_store_day():
    morning = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thursday 10:00 in the store
    earliest, latest = slots.bookable_window(service(lead=90, horizon=2), morning)
    assert earliest == morning + timedelta(minutes=90)
    assert latest.astimezone(SHANGHAI).date() == date(2026, 12, 5)  # Saturday, to its last instant
    assert latest + timedelta(microseconds=1) == slots.store_midnight(date(2026, 12, 6))
    # Late on Thursday in the store (but still Thursday in UTC at 15:30) and just after midnight
    # (Friday in the store, Thursday in UTC): the horizon counts store days.
    _, thursday_night = slots.bookable_window(service(horizon=0), datetime(2026, 12, 3, 15, 30, tzinfo=UTC))
    _, friday_early = slots.bookable_window(service(horizon=0), datetime(2026, 12, 3, 16, 30, tzinfo=UTC))
    assert thursday_night.astimezone(SHANGHAI).date() == THURSDAY
    assert friday_early.astimezone(SHANGHAI).date() == THURSDAY + timedelta(days=1)


@pytest.mark.parametrize("starts_at, words", [
    (datetime(2026, 12, 5, 14, 0), "zone offset"),                       # naive
    (local(THURSDAY, 9), "has passed"),                                   # before now
    (local(THURSDAY, 10, 30), "at least 60 minutes ahead"),               # inside the lead time
    (local(date(2026, 12, 6), 10), "at most 2 days ahead"),               # beyond the horizon
    (local(THURSDAY, 22), "not a start time"),                            # at closing
    (local(date(2026, 12, 4), 9), "open 10:00-22:00"),                     # before opening
    (local(THURSDAY, 12, 30), "every 60 minutes"),                        # off the grid
])
def test_a_start_the_service_does_not_offer_is_refused_with_its_reason(starts_at, words):
    now = local(THURSDAY, 10).astimezone(UTC)
    with pytest.raises(BadTime, match=words):
        slots.check_start(service(45, 15, lead=60, horizon=2), starts_at, now, DayHours(600, 1320))


def test_a_start_on_the_grid_is_accepted_whatever_offset_it_is_written_in():
    now = local(THURSDAY, 10).astimezone(UTC)
    hours = DayHours(600, 1320)
    slots.check_start(service(), local(THURSDAY, 14), now, hours)
    slots.check_start(service(), datetime(2026, 12, 3, 6, 0, tzinfo=UTC), now, hours)  # 14:00 written in UTC
    with pytest.raises(BadTime, match="closed on 2026-12-03 \\(元旦闭店\\)"):
        slots.check_start(service(), local(THURSDAY, 14), now, DayHours(None, None, "元旦闭店"))


def test_the_grid_of_a_month_is_the_sum_of_its_days():
    hours = {THURSDAY + timedelta(days=n): DayHours(600, 1320) for n in range(30) if n % 7 != 3}  # Sundays closed
    starts = slots.starts_between(service(45, 15), THURSDAY, THURSDAY + timedelta(days=29), hours)
    assert len(starts) == len(hours) * 12
    assert starts == sorted(starts)


def test_hours_are_read_the_way_a_store_writes_them_on_its_door():
    assert setup.parse_hours("Mon-Fri 10:00-22:00") == {d: (600, 1320) for d in range(5)}
    week = setup.parse_hours("daily 10:00-22:00; Sat,Sun 09:30-23:00; Tue closed")
    assert week[0] == (600, 1320) and week[5] == week[6] == (570, 1380) and week[1] == (None, None)
    assert sorted(setup.parse_hours("Fri-Mon 10:00-24:00")) == [0, 4, 5, 6]  # wraps the week; 24:00 is midnight
    assert setup.parse_hours("Fri-Mon 10:00-24:00")[4] == (600, 1440)
    for bad, words in [("Mon-Fri 22:00-10:00", "before closing"), ("Mon-Fri", "days, then the hours"),
                       ("Someday 10:00-22:00", "not a weekday"), ("Mon 10:00-25:00", "not a time of day"),
                       ("Mon 10-22", "not a time of day"), ("", "no hours given"), ("Mon 24:30-24:45", "not a time")]:
        with pytest.raises(setup.SetupError, match=words):
            setup.parse_hours(bad)
