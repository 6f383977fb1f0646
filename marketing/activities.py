"""Activities: an event or promotion in a store, when and where, and which brands take part.
Edited here; published through marketing.publishing. Flushes, never commits."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from marketing import editing
from marketing.models import Activity, ActivityBrand, Brand, ContentImage, Store
from wx_service.ground.extensions import db

FIELDS: dict[str, editing.Field] = {
    "title": editing.text(64, required=True),
    "summary": editing.text(256),
    "body": editing.text(20000),
    "store_id": editing.reference(Store, "store"),
    "place": editing.text(128),
    "starts_at": editing.moment(required=True),
    "ends_at": editing.moment(required=True),
    "brand_ids": editing.references(Brand, "brand"),
    "cover_image_id": editing.reference(ContentImage, "image"),
}


def _check(activity: Activity, parsed: dict[str, Any]) -> dict[str, str]:
    starts, ends = editing.merged(activity, parsed, "starts_at"), editing.merged(activity, parsed, "ends_at")
    if starts is not None and ends is not None and ends <= starts:
        return {"ends_at": "ends after it starts"}
    return {}


def brand_ids(activity_id: int) -> list[int]:
    return list(db.session.scalars(select(ActivityBrand.brand_id).where(ActivityBrand.activity_id == activity_id)
                                   .order_by(ActivityBrand.brand_id)))


def _set_brands(activity: Activity, ids: list[int]) -> list[int]:
    old = brand_ids(activity.id)
    wanted = sorted(ids)
    if old != wanted:
        db.session.execute(delete(ActivityBrand).where(ActivityBrand.activity_id == activity.id))
        db.session.add_all(ActivityBrand(activity_id=activity.id, brand_id=ident) for ident in wanted)
        db.session.flush()
    return old


def save_activity(values: dict[str, Any], *, staff_id: int | None, activity_id: int | None = None) -> Activity:
    """Create an activity (a draft) or change the fields given, `brand_ids` naming the brands
    taking part. InvalidContent, with nothing changed, when any is wrong. Audited as
    content.activity.create / .update."""
    return editing.save(Activity, "activity", FIELDS, values, ident=activity_id, staff_id=staff_id, check=_check,
                        links={"brand_ids": _set_brands})
