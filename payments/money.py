"""Money as staff and shoppers type it, and the numbers we give orders and refunds.

Amounts are integer fen everywhere; yuan exist only at the edges (a till's amount field, an
operator's command, a page). The conversion is exact string arithmetic, never float.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

SHANGHAI = timezone(timedelta(hours=8))  # the store's clock: numbers sort by local time
# ASCII digits only (no full-width digits, exponents, signs, thousands separators, NaN).
_YUAN = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,2}))?")


class AmountError(ValueError):
    """An amount that is not a positive number of yuan with at most two decimals, or out of bounds."""


def parse_yuan(text: Any, *, max_fen: int) -> int:
    """'128.00' -> 12800, '12.3' -> 1230: exact fen. Positive, at most 2 decimals, at most max_fen."""
    match = _YUAN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise AmountError("amount must be a positive number of yuan with at most 2 decimals, e.g. 128.00")
    fen = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if fen <= 0:
        raise AmountError("amount must be more than 0")
    if fen > max_fen:
        raise AmountError(f"amount must be at most {format_fen(max_fen)} yuan")
    return fen


def format_fen(fen: int) -> str:
    """12800 -> '128.00', -5 -> '-0.05'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def new_number(prefix: str, *, random_digits: int = 10, now: datetime | None = None) -> str:
    """prefix + Beijing yyyymmddHHMMSS + random digits: sortable by time when read in the merchant
    platform, unguessable, unique in practice (the unique constraints catch the rest)."""
    stamp = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
    return prefix + stamp + "".join(str(secrets.randbelow(10)) for _ in range(random_digits))
