"""The membership programme as the store defines it in config/member_card.json: the WeChat card,
its activation form, the levels, the points rules and the benefits. Read once, validated."""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from members.levels import Level, validate_levels

DEFINITION_FILE = Path(__file__).resolve().parent.parent / "config" / "member_card.json"


@dataclass(frozen=True)
class Benefit:
    title: str
    valid_days: int
    greeting: str
    value_yuan: int = 0
    value_yuan_by_level: tuple[tuple[str, int], ...] = ()

    def value_fen_for(self, level_code: str) -> int:
        by_level = dict(self.value_yuan_by_level)
        return 100 * (by_level.get(level_code, self.value_yuan) if by_level else self.value_yuan)


@dataclass(frozen=True)
class Program:
    raw: dict[str, Any]
    levels: tuple[Level, ...]
    points_per_yuan: int
    adjustment_needs_approval_above: int
    birthday: Benefit
    anniversary: Benefit
    level_gift: Benefit
    benefit_template_id: str

    def level(self, code: str) -> Level:
        for level in self.levels:
            if level.code == code:
                return level
        return self.levels[0]

    @property
    def content_hash(self) -> str:
        """Changes whenever what WeChat shows (card, form, level names) changes."""
        shown = {"card": self.raw["card"], "activation_form": self.raw["activation_form"],
                 "levels": [(lv.code, lv.name) for lv in self.levels]}
        return hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _benefit(data: dict[str, Any]) -> Benefit:
    return Benefit(title=data["title"], valid_days=int(data["valid_days"]), greeting=data.get("greeting", ""),
                   value_yuan=int(data.get("value_yuan", 0)),
                   value_yuan_by_level=tuple(sorted((k, int(v)) for k, v in data.get("value_yuan_by_level", {}).items())))


def parse_program(raw: dict[str, Any]) -> Program:
    levels = tuple(Level(code=item["code"], name=item["name"], min_spend_fen=int(item["min_spend_yuan"]) * 100,
                         points_multiplier=float(item["points_multiplier"]), benefits=tuple(item.get("benefits", [])))
                   for item in raw["levels"])
    validate_levels(levels)
    benefits = raw["benefits"]
    return Program(raw=raw, levels=levels, points_per_yuan=int(raw["points"]["per_yuan"]),
                   adjustment_needs_approval_above=int(raw["points"]["adjustment_needs_approval_above"]),
                   birthday=_benefit(benefits["birthday"]), anniversary=_benefit(benefits["anniversary"]),
                   level_gift=_benefit(benefits["level_gift"]),
                   benefit_template_id=raw.get("notifications", {}).get("benefit_template_id", ""))


@functools.lru_cache(maxsize=4)
def load_program(path: str = str(DEFINITION_FILE)) -> Program:
    return parse_program(json.loads(Path(path).read_text(encoding="utf-8")))
