"""members/levels.py: pure rules, no database, no clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from members.levels import (
    Level,
    level_for_spend,
    points_for_payment,
    progress,
    spend_in_window,
    validate_levels,
)
from members.program import load_program

SILVER = Level("silver", "银卡", 0, 1.0)
GOLD = Level("gold", "金卡", 500_000, 1.2)
PLATINUM = Level("platinum", "白金卡", 2_000_000, 1.5)
LEVELS = (SILVER, GOLD, PLATINUM)
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("spend, code", [(0, "silver"), (499_999, "silver"), (500_000, "gold"),
                                         (1_999_999, "gold"), (2_000_000, "platinum"), (10**9, "platinum")])
def test_level_for_spend_takes_the_highest_threshold_reached(spend, code):
    assert level_for_spend(LEVELS, spend).code == code


def test_progress_names_the_next_level_and_what_is_missing():
    p = progress(LEVELS, 300_000)
    assert (p.level, p.next_level, p.fen_to_next, p.spend_fen) == (SILVER, GOLD, 200_000, 300_000)
    top = progress(LEVELS, 3_000_000)
    assert top.level == PLATINUM and top.next_level is None and top.fen_to_next == 0


def test_spend_window_is_the_last_365_days_net_of_refunds_and_never_negative():
    entries = [(NOW - timedelta(days=400), 900_000),  # aged out
               (NOW - timedelta(days=365), 50_000),   # exactly a year ago: out
               (NOW - timedelta(days=364), 100_000),
               (NOW - timedelta(days=1), 30_000),
               (NOW - timedelta(hours=1), -10_000),  # a refund
               (NOW + timedelta(days=1), 70_000)]    # not yet
    assert spend_in_window(entries, NOW) == 120_000
    assert spend_in_window([(NOW - timedelta(days=1), -5_000)], NOW) == 0


@pytest.mark.parametrize("amount, level, points", [(12_345, SILVER, 123), (12_345, GOLD, 147), (99, PLATINUM, 0),
                                                   (10_000, PLATINUM, 150), (0, GOLD, 0), (-500, GOLD, 0)])
def test_points_are_whole_yuan_times_rate_times_multiplier(amount, level, points):
    assert points_for_payment(amount, 1, level) == points


def test_points_per_yuan_scales():
    assert points_for_payment(10_000, 2, GOLD) == 240


@pytest.mark.parametrize("levels, message", [
    ((), "at least one"),
    ((Level("a", "A", 100, 1.0),), "start at 0"),
    ((SILVER, Level("g", "G", 0, 1.2)), "increase strictly"),
    ((SILVER, Level("silver", "S2", 10, 1.0)), "unique"),
    ((SILVER, Level("g", "G", 10, 0)), "multiplier"),
])
def test_invalid_level_tables_are_refused(levels, message):
    with pytest.raises(ValueError, match=message):
        validate_levels(levels)


def test_the_store_programme_is_valid_and_ordered():
    program = load_program()
    validate_levels(program.levels)
    assert [lv.code for lv in program.levels] == ["silver", "gold", "platinum", "diamond"]
    assert program.birthday.value_fen_for("gold") == 10_000
    assert program.anniversary.value_fen_for("diamond") == 3_000
    assert program.level_gift.value_fen_for("silver") == 0
