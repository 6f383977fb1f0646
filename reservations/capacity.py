"""The counted things reservations never oversell, each moved by one guarded UPDATE: a unit of a
resource's capacity at a start time (`used < capacity`) and a shopper's open bookings
(`open_bookings < limit`). Their rows are created on first use; a concurrent creator's duplicate
is dropped by the unique key. Flushes, never commits. Below bookings.py and waitlist.py, which
both take and give back units.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from reservations.models import Resource, ShopperLoad, SlotUsage
from wx_service.ground.extensions import db

# Unambiguous on a phone screen and to a scanner: no 0/O, 1/I/L.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def visit_code(prefix: str) -> str:
    """The code on a shopper's reservation QR (B… a booking, H… a hold): random, not guessable
    from an id, short enough to type when the scanner fails."""
    return prefix + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(9))


def _insert_once(row: object) -> None:
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        pass  # a concurrent request made it first: the row is there


def take_unit(resource: Resource, starts_at: datetime) -> bool:
    """One unit of the resource at that start, if one is free."""
    _insert_once(SlotUsage(resource_id=resource.id, starts_at=starts_at, capacity=resource.capacity, used=0))
    return bool(db.session.execute(update(SlotUsage).where(
        SlotUsage.resource_id == resource.id, SlotUsage.starts_at == starts_at,
        SlotUsage.used < SlotUsage.capacity).values(used=SlotUsage.used + 1)).rowcount)


def give_back_unit(resource_id: int, starts_at: datetime) -> None:
    db.session.execute(update(SlotUsage).where(SlotUsage.resource_id == resource_id, SlotUsage.starts_at == starts_at,
                                               SlotUsage.used > 0).values(used=SlotUsage.used - 1))


def take_open_booking(openid: str, limit: int) -> bool:
    """Count one more open booking for the shopper, unless they are at the limit."""
    _insert_once(ShopperLoad(openid=openid, open_bookings=0))
    return bool(db.session.execute(update(ShopperLoad).where(
        ShopperLoad.openid == openid, ShopperLoad.open_bookings < limit)
        .values(open_bookings=ShopperLoad.open_bookings + 1)).rowcount)


def drop_open_booking(openid: str) -> None:
    db.session.execute(update(ShopperLoad).where(ShopperLoad.openid == openid, ShopperLoad.open_bookings > 0)
                       .values(open_bookings=ShopperLoad.open_bookings - 1))
