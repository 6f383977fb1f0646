"""The mini-program API's JSON shapes, as documented in mp_openapi.py: money in integer fen,
times ISO-8601 in UTC with their offset, full phone numbers never echoed back."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from members.levels import Level
from members.models import Coupon, PointsEntry
from members.points import Summary


def iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at is not None else None


def mask_phone(phone: str | None) -> str | None:
    """138****8000: enough for the shopper to recognise it, not enough to be a leak."""
    if not phone:
        return None
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def level(lv: Level) -> dict[str, Any]:
    return {"code": lv.code, "name": lv.name, "min_spend_fen": lv.min_spend_fen,
            "points_multiplier": lv.points_multiplier, "benefits": list(lv.benefits)}


def member(summary: Summary) -> dict[str, Any]:
    m = summary.member
    birthday: date | None = m.birthday
    return {"id": m.id, "name": m.name or "", "phone_masked": mask_phone(m.phone), "has_phone": bool(m.phone),
            "birthday": birthday.isoformat() if birthday else None, "joined_at": iso(m.joined_at),
            "level": {"code": summary.level.code, "name": summary.level.name},
            "points_balance": m.points_balance, "card_code": summary.card_code}


def progress(summary: Summary) -> dict[str, Any]:
    p = summary.progress
    return {"level": level(p.level), "spend_fen_12_months": p.spend_fen,
            "next_level": level(p.next_level) if p.next_level else None, "fen_to_next": p.fen_to_next,
            "benefits": list(p.level.benefits)}


def points_entry(entry: PointsEntry) -> dict[str, Any]:
    return {"id": entry.id, "delta": entry.delta, "balance_after": entry.balance_after, "reason": entry.reason,
            "note": entry.note or "", "created_at": iso(entry.created_at)}


def coupon(c: Coupon) -> dict[str, Any]:
    return {"code": c.code, "kind": c.kind, "title": c.title, "value_fen": c.value_fen,
            "issued_at": iso(c.issued_at), "expires_at": iso(c.expires_at)}
