"""Brands with a counter in a store. `counter_code` is the counter id orders carry, which is how
a sale is credited to a brand, so it is checked like the reservation console checks counters.
Flushes, never commits."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from marketing import editing
from marketing.editing import BadValue
from marketing.models import Brand, ContentImage, Store
from wx_service.ground.extensions import db

_COUNTER = re.compile(r"[\w\-]{1,32}", re.ASCII)


def _counter(value: Any) -> str:
    code = editing.text(32).parse(value)
    if code and not _COUNTER.fullmatch(code):
        raise BadValue("is 1-32 letters, digits, '_' or '-' (the counter id on orders)")
    return code


FIELDS: dict[str, editing.Field] = {
    "name": editing.text(64, required=True),
    "name_en": editing.text(64),
    "store_id": editing.reference(Store, "store"),
    "floor": editing.text(16),
    "counter_code": editing.Field(_counter),
    "categories": editing.words(16, 10),
    "description": editing.text(2000),
    "logo_image_id": editing.reference(ContentImage, "image"),
    "active": editing.boolean(),
}


def _check(brand: Brand, parsed: dict[str, Any]) -> dict[str, str]:
    if "name" in parsed and parsed["name"] != brand.name:
        if db.session.scalar(select(Brand.id).where(Brand.name == parsed["name"])) is not None:
            return {"name": f"another brand is called {parsed['name']}"}
    return {}


def save_brand(values: dict[str, Any], *, staff_id: int | None, brand_id: int | None = None) -> Brand:
    """Create a brand (no id) or change the fields given. InvalidContent, with nothing changed,
    when any is wrong. Audited as content.brand.create / .update."""
    return editing.save(Brand, "brand", FIELDS, values, ident=brand_id, staff_id=staff_id, check=_check)


def brands() -> list[Brand]:
    return list(db.session.scalars(select(Brand).order_by(Brand.name)))
