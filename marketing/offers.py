"""New arrivals (a product new at a brand's counter) and discounts announced to everyone (a
brand's, or store-wide). Edited here; published through marketing.publishing. Flushes."""
from __future__ import annotations

from typing import Any

from marketing import editing
from marketing.models import Brand, ContentImage, Discount, NewArrival, Store

MAX_PRICE_FEN = 100_000_000  # one million yuan

ARRIVAL_FIELDS: dict[str, editing.Field] = {
    "brand_id": editing.reference(Brand, "brand", required=True),
    "product": editing.text(64, required=True),
    "description": editing.text(256),
    "price_fen": editing.integer(0, MAX_PRICE_FEN, required=True),
    "image_id": editing.reference(ContentImage, "image"),
}

DISCOUNT_FIELDS: dict[str, editing.Field] = {
    "title": editing.text(64, required=True),
    "description": editing.text(256),
    "brand_id": editing.reference(Brand, "brand"),
    "store_id": editing.reference(Store, "store"),
    "valid_from": editing.day(required=True),
    "valid_until": editing.day(required=True),
    "image_id": editing.reference(ContentImage, "image"),
}


def save_new_arrival(values: dict[str, Any], *, staff_id: int | None, arrival_id: int | None = None) -> NewArrival:
    """Create a new arrival (a draft) or change the fields given; the price is in fen.
    Audited as content.new_arrival.create / .update."""
    return editing.save(NewArrival, "new_arrival", ARRIVAL_FIELDS, values, ident=arrival_id, staff_id=staff_id)


def _check_discount(discount: Discount, parsed: dict[str, Any]) -> dict[str, str]:
    since, until = editing.merged(discount, parsed, "valid_from"), editing.merged(discount, parsed, "valid_until")
    if since is not None and until is not None and until < since:
        return {"valid_until": "is on or after valid_from"}
    return {}


def save_discount(values: dict[str, Any], *, staff_id: int | None, discount_id: int | None = None) -> Discount:
    """Create a discount (a draft; no brand means store-wide) or change the fields given.
    Audited as content.discount.create / .update."""
    return editing.save(Discount, "discount", DISCOUNT_FIELDS, values, ident=discount_id, staff_id=staff_id,
                        check=_check_discount)
