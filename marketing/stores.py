"""The stores of the group: their code, address, phone, where they are (for "nearest store") and
weekly hours, and the days a store keeps other hours or stays closed. Flushes, never commits."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from marketing import editing
from marketing.editing import BadValue, clock
from marketing.exceptions import InvalidContent
from marketing.models import Store, StoreHoursException
from wx_service.ground.extensions import db

FIELDS: dict[str, editing.Field] = {
    "code": editing.Field(lambda value: _code(value), required=True),
    "name": editing.text(64, required=True),
    "address": editing.text(256),
    "phone": editing.text(32),
    "latitude": editing.number(-90, 90),
    "longitude": editing.number(-180, 180),
    "weekly_hours": editing.weekly_hours(),
    "active": editing.boolean(),
    "sort_order": editing.integer(0, 9999),
}


def _code(value: Any) -> str:
    code = editing.text(32, required=True).parse(value)
    if not code.replace("-", "").replace("_", "").isalnum() or not code.isascii():
        raise BadValue("is 1-32 letters, digits, '-' or '_'")
    return code


def _check(store: Store, parsed: dict[str, Any]) -> dict[str, str]:
    errors = {}
    if "code" in parsed and parsed["code"] != store.code:
        if db.session.scalar(select(Store.id).where(Store.code == parsed["code"])) is not None:
            errors["code"] = f"another store has the code {parsed['code']}"
    if (editing.merged(store, parsed, "latitude") is None) != (editing.merged(store, parsed, "longitude") is None):
        errors["latitude"] = "give both latitude and longitude, or neither"
    return errors


def save_store(values: dict[str, Any], *, staff_id: int | None, store_id: int | None = None) -> Store:
    """Create a store (no id) or change the fields given. InvalidContent, with nothing changed,
    when any is wrong. Audited as content.store.create / .update."""
    return editing.save(Store, "store", FIELDS, values, ident=store_id, staff_id=staff_id, check=_check)


def stores() -> list[Store]:
    return list(db.session.scalars(select(Store).order_by(Store.sort_order, Store.id)))


def exceptions_of(store_id: int) -> list[StoreHoursException]:
    return list(db.session.scalars(select(StoreHoursException).where(StoreHoursException.store_id == store_id)
                                   .order_by(StoreHoursException.day)))


def _shape(row: StoreHoursException | None) -> dict[str, Any] | None:
    if row is None:
        return None
    if row.opens is None:
        return {"closed": True, "note": row.note}
    return {"opens": row.opens.strftime("%H:%M"), "closes": row.closes.strftime("%H:%M"), "note": row.note}


def set_hours_exception(store_id: int, day: Any, *, opens: Any = None, closes: Any = None, note: str = "",
                        remove: bool = False, staff_id: int | None) -> StoreHoursException | None:
    """A day the store keeps other hours (`opens`, `closes`) or stays closed (neither); `remove`
    takes the exception away. Audited as content.store.update, the day's old and new hours under
    "hours <day>". Flushes."""
    store = editing.fetch(Store, store_id, "store")
    errors: dict[str, str] = {}
    try:
        on = editing.day(required=True).parse(day)
    except BadValue as exc:
        errors["day"] = str(exc)
        on = None
    times: list[Any] = []
    for name, value in (("opens", opens), ("closes", closes)):
        try:
            times.append(None if value in (None, "") else clock(value))
        except BadValue as exc:
            errors[name] = str(exc)
    try:
        note = editing.text(128).parse(note)
    except BadValue as exc:
        errors["note"] = str(exc)
    if not errors and not remove:
        if (times[0] is None) != (times[1] is None):
            errors["closes"] = "give both times for other hours, or neither for a closed day"
        elif times[0] is not None and times[0] >= times[1]:
            errors["closes"] = "closes after it opens"
    if errors:
        raise InvalidContent(errors)
    assert isinstance(on, date)
    row = db.session.scalar(select(StoreHoursException).where(StoreHoursException.store_id == store.id,
                                                              StoreHoursException.day == on))
    before = _shape(row)
    if remove:
        if row is not None:
            db.session.delete(row)
        row = None
    else:
        row = row or StoreHoursException(store_id=store.id, day=on)
        row.opens, row.closes, row.note = times[0], times[1], note
        db.session.add(row)
    db.session.flush()
    after = _shape(row)
    if before != after:
        key = f"hours {on.isoformat()}"
        editing.audited(staff_id, "store", "update", store.id, {key: before}, {key: after})
    return row
