"""Holdable goods and their holds; services, resources, the capacity used per start time, and
bookings. Times are stored in UTC; the store's day is Asia/Shanghai's."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow


class HoldableVariant(Base):
    """A size/colour of a product a counter lets shoppers hold: not an inventory, only how many
    may be held at once (`holdable`) and how many are (`held`), kept by guarded UPDATEs."""

    __tablename__ = "reservation_variants"
    __table_args__ = (
        UniqueConstraint("counter_code", "product", "variant", name="uq_reservation_variants_item"),
        CheckConstraint("held >= 0 AND held <= holdable", name="held_within_holdable"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter_code: Mapped[str] = mapped_column(String(32))
    brand: Mapped[str] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(64))  # size / colour
    holdable: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer, default=0)


class GoodsHold(Base):
    """One shopper's hold of one unit of a variant for a visit day, until `expires_at`."""

    __tablename__ = "reservation_holds"
    __table_args__ = (
        # A retried tap holds once.
        UniqueConstraint("openid", "idempotency_key", name="uq_reservation_holds_idempotency"),
        Index("ix_reservation_holds_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("reservation_variants.id"), index=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    visit_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    out_trade_no: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the payment it led to


class Service(Base):
    """A service a counter offers: its length and the buffer after it."""

    __tablename__ = "reservation_services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    counter_code: Mapped[str] = mapped_column(String(32))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)


class Resource(Base):
    """Who or what serves: a staff member, a station, a room; `capacity` shoppers at once."""

    __tablename__ = "reservation_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("reservation_services.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # staff, station, room
    capacity: Mapped[int] = mapped_column(Integer, default=1)


class SlotUsage(Base):
    """How much of a resource's capacity is taken at one start time. Booking is a guarded UPDATE
    of `used` (`used < capacity`), and the CHECK is the last word."""

    __tablename__ = "reservation_slot_usage"
    __table_args__ = (
        UniqueConstraint("resource_id", "starts_at", name="uq_reservation_slot_usage_slot"),
        CheckConstraint("used >= 0 AND used <= capacity", name="used_within_capacity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("reservation_resources.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)


class Booking(Base):
    """A shopper's appointment: one unit of one resource at one start time. A reschedule books
    the new slot first, then releases this one, and points back to it (`previous_id`)."""

    __tablename__ = "reservation_bookings"
    __table_args__ = (
        UniqueConstraint("openid", "idempotency_key", name="uq_reservation_bookings_idempotency"),
        Index("ix_reservation_bookings_slot", "resource_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("reservation_services.id"))
    resource_id: Mapped[int] = mapped_column(ForeignKey("reservation_resources.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("reservation_bookings.id"), nullable=True)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
