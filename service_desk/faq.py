"""The FAQ that answers before a person does: staff edit it in the console, as data."""
from __future__ import annotations

import re

from sqlalchemy import select

from service_desk.models import FaqEntry
from wx_service.ground.extensions import db

MAX_PATTERN = 512


class BadPattern(ValueError):
    """A keyword list or regular expression staff typed that cannot be used."""


def check_pattern(pattern: str, is_regex: bool) -> str:
    """The pattern, trimmed, or BadPattern saying what is wrong with it."""
    pattern = pattern.strip()
    if not pattern or len(pattern) > MAX_PATTERN:
        raise BadPattern(f"a pattern is 1 to {MAX_PATTERN} characters")
    if is_regex:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BadPattern(f"not a regular expression: {exc}") from exc
    elif not [word for word in pattern.split("|") if word.strip()]:
        raise BadPattern("keywords are separated by |, e.g. 停车|车位")
    return pattern


def matches(entry: FaqEntry, text: str) -> bool:
    if entry.is_regex:
        try:
            return re.search(entry.pattern, text, re.IGNORECASE) is not None
        except re.error:
            return False
    lowered = text.lower()
    return any(word.strip().lower() in lowered for word in entry.pattern.split("|") if word.strip())


def answer_for(text: str) -> FaqEntry | None:
    """The active entry of highest priority (then the oldest) that matches the message."""
    text = text.strip()
    if not text:
        return None
    entries = db.session.scalars(select(FaqEntry).where(FaqEntry.active.is_(True))
                                 .order_by(FaqEntry.priority.desc(), FaqEntry.id)).all()
    return next((entry for entry in entries if matches(entry, text)), None)
