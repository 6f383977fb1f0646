"""The one way content fields are checked and written, shared by stores, brands, activities, new
arrivals and discounts: each noun declares its fields (a parser each), `parse` checks every value
given before anything is touched (so a bad value changes nothing), and `apply` writes the parsed
values and answers the before/after of what really changed, for the audit entry.

Parsers take what a JSON body or a Python caller gives (strings or typed values) and refuse naive
datetimes: the edge says which zone a form's time is in, the domain stores UTC.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from marketing.exceptions import InvalidContent, UnknownContent
from members import audit
from wx_service.ground.extensions import db


class BadValue(Exception):
    """Raised by a parser; its message says what the value must be."""


@dataclass(frozen=True)
class Field:
    """One editable field: its parser, whether a new item must have it, and its default."""

    parse: Callable[[Any], Any]
    required: bool = False


def text(limit: int, *, required: bool = False) -> Field:
    def parse(value: Any) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadValue("is text")
        value = value.strip()
        if required and not value:
            raise BadValue("is required")
        if len(value) > limit:
            raise BadValue(f"is at most {limit} characters (got {len(value)})")
        return value
    return Field(parse, required)


def integer(low: int, high: int, *, required: bool = False) -> Field:
    def parse(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadValue(f"is a whole number from {low} to {high}")
        return value
    return Field(parse, required)


def number(low: float, high: float) -> Field:
    """An optional decimal (a coordinate): empty means none."""
    def parse(value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BadValue(f"is a number from {low} to {high}") from None
        if isinstance(value, bool) or not low <= number <= high:
            raise BadValue(f"is a number from {low} to {high}")
        return number
    return Field(parse)


def boolean() -> Field:
    def parse(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "1", "on", 1):
            return True
        if value in ("false", "0", "", 0, None):
            return False
        raise BadValue("is true or false")
    return Field(parse)


def moment(*, required: bool = False) -> Field:
    """An instant with its zone (ISO 8601 with an offset, or an aware datetime), stored in UTC."""
    def parse(value: Any) -> datetime | None:
        return parse_moment(value, required=required)
    return Field(parse, required)


def parse_moment(value: Any, *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise BadValue("is required")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadValue("is a date and time like 2026-12-04T10:00+08:00") from None
    if not isinstance(value, datetime):
        raise BadValue("is a date and time")
    if value.tzinfo is None:
        raise BadValue("needs its time zone (like +08:00)")
    return value.astimezone(timezone.utc)


def day(*, required: bool = False) -> Field:
    def parse(value: Any) -> date | None:
        if value is None or value == "":
            if required:
                raise BadValue("is required")
            return None
        if isinstance(value, datetime):
            raise BadValue("is a date like 2026-12-04")
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise BadValue("is a date like 2026-12-04") from None
        if not isinstance(value, date):
            raise BadValue("is a date like 2026-12-04")
        return value
    return Field(parse, required)


def clock(value: Any) -> time:
    """A time of day, "HH:MM" (or a time)."""
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value.strip()):
        hour, minute = (int(part) for part in value.strip().split(":"))
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise BadValue("is a time like 10:00")


def words(limit: int, count: int) -> Field:
    """A short list of words (a brand's categories): a list, or text separated by commas."""
    def parse(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = re.split(r"[,，、]", value)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise BadValue("is a list of words")
        items = list(dict.fromkeys(item.strip() for item in value if item.strip()))
        if len(items) > count or any(len(item) > limit for item in items):
            raise BadValue(f"is at most {count} words of at most {limit} characters each")
        return items
    return Field(parse)


def reference(model: type, noun: str, *, required: bool = False) -> Field:
    """The id of an existing row of `model` (empty: none)."""
    def parse(value: Any) -> int | None:
        if value is None or value == "":
            if required:
                raise BadValue("is required")
            return None
        ident = integer(1, 2**31 - 1).parse(value)
        if db.session.get(model, ident) is None:
            raise BadValue(f"no {noun} {ident}")
        return ident
    return Field(parse, required)


def references(model: type, noun: str, count: int = 20) -> Field:
    """Ids of existing rows of `model`, each once, in order."""
    def parse(value: Any) -> list[int]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise BadValue(f"is a list of {noun} ids")
        ids = list(dict.fromkeys(reference(model, noun, required=True).parse(item) for item in value))
        if len(ids) > count:
            raise BadValue(f"names at most {count}")
        return sorted(ids)
    return Field(parse)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekly_hours() -> Field:
    """{"mon": ["10:00", "22:00"], ...}; a day missing (or empty) is closed that weekday."""
    def parse(value: Any) -> dict[str, list[str]]:
        if value is None:
            return {}
        if not isinstance(value, dict) or set(value) - set(WEEKDAYS):
            raise BadValue(f"maps weekdays ({', '.join(WEEKDAYS)}) to [opens, closes]")
        hours: dict[str, list[str]] = {}
        for name in WEEKDAYS:
            span = value.get(name)
            if not span:
                continue
            if isinstance(span, str):
                span = span.replace("～", "-").replace("~", "-").split("-")
            if not isinstance(span, (list, tuple)) or len(span) != 2:
                raise BadValue(f"{name} is [opens, closes] like ['10:00', '22:00']")
            opens, closes = clock(span[0]), clock(span[1])
            if opens >= closes:
                raise BadValue(f"{name} closes after it opens")
            hours[name] = [opens.strftime("%H:%M"), closes.strftime("%H:%M")]
        return hours
    return Field(parse)


# -- checking and writing ------------------------------------------------------------------------

def parse(fields: Mapping[str, Field], values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Every value given, checked; InvalidContent naming each bad or missing field (and any field
    the noun does not have). Touches nothing."""
    errors: dict[str, str] = {}
    for name in values:
        if name not in fields:
            errors[name] = "is not a field of this item"
    parsed: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in values:
            if creating and field.required:
                errors[name] = "is required"
            continue
        try:
            parsed[name] = field.parse(values[name])
        except BadValue as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidContent(errors)
    return parsed


def plain(value: Any) -> Any:
    """A value as the audit log keeps it (JSON)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


def apply(item: Any, parsed: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write `parsed` onto `item`; (before, after) of the fields whose value changed."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in parsed.items():
        old = getattr(item, name, None)
        if old != value:
            before[name], after[name] = plain(old), plain(value)
            setattr(item, name, value)
    return before, after


def audited(staff_id: int | None, noun: str, verb: str, ident: int, before: dict | None, after: dict | None,
            detail: str = "") -> None:
    """The entry for one content write: action `content.<noun>.<verb>`, subject `<noun>:<id>`."""
    audit.record(staff_id, f"content.{noun}.{verb}", f"{noun}:{ident}", before=before, after=after, detail=detail)


def fetch(model: type, ident: Any, noun: str) -> Any:
    """The row, read afresh (UnknownContent when there is none)."""
    row = db.session.get(model, ident, populate_existing=True) if isinstance(ident, int) else None
    if row is None:
        raise UnknownContent(f"no {noun} {ident}")
    return row


Check = Callable[[Any, dict[str, Any]], dict[str, str]]
Link = Callable[[Any, Any], Any]


def merged(item: Any, parsed: Mapping[str, Any], name: str) -> Any:
    """A field's value as it will be: the new one if given, else the item's."""
    return parsed[name] if name in parsed else getattr(item, name, None)


def save(model: type, noun: str, fields: Mapping[str, Field], values: Mapping[str, Any], *,
         ident: int | None = None, staff_id: int | None, check: Check | None = None,
         links: Mapping[str, Link] | None = None) -> Any:
    """Create (`ident` None) or edit one row of `model` and audit it as content.<noun>.create or
    .update with the changed fields. Every value and every rule between fields (`check`, which
    answers field -> error) is checked before anything is written. `links` write the fields kept
    outside the row (an activity's brands): each takes (item, value) and answers the old value.
    An edit that changes nothing records nothing. Flushes."""
    creating = ident is None
    parsed = parse(fields, values, creating=creating)
    item = model() if creating else fetch(model, ident, noun)
    errors = check(item, parsed) if check else {}
    if errors:
        raise InvalidContent(errors)
    linked = {name: parsed.pop(name) for name in list(parsed) if links and name in links}
    before, after = apply(item, parsed)
    if creating:
        db.session.add(item)
    db.session.flush()
    for name, value in linked.items():
        old = links[name](item, value)
        if old != value:
            before[name], after[name] = plain(old), plain(value)
    if creating:
        audited(staff_id, noun, "create", item.id, None, after)
    elif after:
        audited(staff_id, noun, "update", item.id, before, after)
    return item
