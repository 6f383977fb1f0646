"""The counted things reservations never oversell, each moved by one guarded UPDATE: a unit of a
resource's capacity at a start time (`used < capacity`) and a shopper's open bookings
(`open_bookings < limit`). Their rows are created on first use by the same statement (INSERT ...
ON CONFLICT DO UPDATE ... WHERE the guard holds). Flushes, never commits. Below bookings.py and
waitlist.py, which both take and give back units.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import update

from reservations.models import Resource, ShopperLoad, SlotUsage
from wx_service.ground.db import insert_for
from wx_service.ground.extensions import db

# Unambiguous on a phone screen and to a scanner: no 0/O, 1/I/L.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def visit_code(prefix: str) -> str:
    """The code on a shopper's reservation QR (B… a booking, H… a hold): random, not guessable
    from an id, short enough to type when the scanner fails."""
    return prefix + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(9))


def _insert(model: type) -> Any:
    return insert_for(db.session, model)


def take_unit(resource: Resource, starts_at: datetime) -> bool:
    """One unit of the resource at that start, if one is free. One statement: the slot's row is
    created with the unit taken, or (it exists) its `used` is raised while below `capacity`; on
    Postgres ON CONFLICT locks the existing row and checks the guard on its latest version, so
    concurrent takers queue on the row and never pass the capacity."""
    if resource.capacity < 1:
        return False
    stmt = _insert(SlotUsage).values(resource_id=resource.id, starts_at=starts_at, capacity=resource.capacity, used=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SlotUsage.resource_id, SlotUsage.starts_at], set_={"used": SlotUsage.used + 1},
        where=SlotUsage.used < SlotUsage.capacity).returning(SlotUsage.id)
    # A row comes back when one was inserted or raised (rowcount is no guide with RETURNING).
    return db.session.execute(stmt).first() is not None


def give_back_unit(resource_id: int, starts_at: datetime) -> None:
    db.session.execute(update(SlotUsage).where(SlotUsage.resource_id == resource_id, SlotUsage.starts_at == starts_at,
                                               SlotUsage.used > 0).values(used=SlotUsage.used - 1))


def take_open_booking(openid: str, limit: int) -> bool:
    """Count one more open booking for the shopper, unless they are at the limit (one statement,
    as take_unit)."""
    if limit < 1:
        return False
    stmt = _insert(ShopperLoad).values(openid=openid, open_bookings=1).on_conflict_do_update(
        index_elements=[ShopperLoad.openid], set_={"open_bookings": ShopperLoad.open_bookings + 1},
        where=ShopperLoad.open_bookings < limit).returning(ShopperLoad.openid)
    return db.session.execute(stmt).first() is not None


def drop_open_booking(openid: str) -> None:
    db.session.execute(update(ShopperLoad).where(ShopperLoad.openid == openid, ShopperLoad.open_bookings > 0)
                       .values(open_bookings=ShopperLoad.open_bookings - 1))
