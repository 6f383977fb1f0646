"""Member levels: pure rules from the last 12 months of spend. No database, no clock.

Thresholds, names, points multipliers and benefits come from the card definition file
(config/member_card.json), so the store changes them without a code change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

SPEND_WINDOW = timedelta(days=365)


@dataclass(frozen=True)
class Level:
    code: str
    name: str
    min_spend_fen: int  # 12-month spend at which the level starts
    points_multiplier: float
    benefits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    level: Level
    spend_fen: int
    next_level: Level | None
    fen_to_next: int  # 0 at the top level


def validate_levels(levels: Sequence[Level]) -> None:
    if not levels:
        raise ValueError("at least one level is needed")
    if levels[0].min_spend_fen != 0:
        raise ValueError("the first level must start at 0 spend")
    for lower, higher in zip(levels, levels[1:]):
        if higher.min_spend_fen <= lower.min_spend_fen:
            raise ValueError("level thresholds must increase strictly")
    if len({level.code for level in levels}) != len(levels):
        raise ValueError("level codes must be unique")
    for level in levels:
        if level.points_multiplier <= 0:
            raise ValueError(f"{level.code}: the points multiplier must be positive")


def spend_in_window(entries: Iterable[tuple[datetime, int]], now: datetime) -> int:
    """Net spend (refunds are negative) in the 12 months up to `now`; never below zero."""
    since = now - SPEND_WINDOW
    return max(0, sum(amount for at, amount in entries if since < at <= now))


def level_for_spend(levels: Sequence[Level], spend_fen: int) -> Level:
    current = levels[0]
    for level in levels:
        if spend_fen >= level.min_spend_fen:
            current = level
    return current


def progress(levels: Sequence[Level], spend_fen: int) -> Progress:
    level = level_for_spend(levels, spend_fen)
    index = list(levels).index(level)
    next_level = levels[index + 1] if index + 1 < len(levels) else None
    to_next = max(0, next_level.min_spend_fen - spend_fen) if next_level else 0
    return Progress(level=level, spend_fen=spend_fen, next_level=next_level, fen_to_next=to_next)


def points_for_payment(amount_fen: int, points_per_yuan: int, level: Level) -> int:
    """Whole points for a payment: whole yuan x points per yuan x the level's multiplier."""
    if amount_fen <= 0:
        return 0
    return int((amount_fen // 100) * points_per_yuan * level.points_multiplier)
