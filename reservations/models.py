"""Holdable goods and their holds; services, resources, the capacity used per start time, and
bookings. Times are stored in UTC; the store's day is Asia/Shanghai's."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
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
    visit_code: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    visited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Service(Base):
    """A service a counter offers: its length, the buffer after it (slots start every
    duration + buffer from opening), how early it must be booked (`lead_minutes`) and how far ahead
    it may be (`horizon_days`)."""

    __tablename__ = "reservation_services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    counter_code: Mapped[str] = mapped_column(String(32), index=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    lead_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    horizon_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True, server_default=true())


class OpeningHours(Base):
    """A counter's usual hours on one weekday (0 = Monday), in minutes after the store's midnight.
    No row for a weekday: closed that day."""

    __tablename__ = "reservation_hours"
    __table_args__ = (
        UniqueConstraint("counter_code", "weekday", name="uq_reservation_hours_day"),
        CheckConstraint("weekday BETWEEN 0 AND 6 AND opens >= 0 AND closes <= 1440 AND opens < closes",
                        name="hours_sane"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter_code: Mapped[str] = mapped_column(String(32))
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[int] = mapped_column(Integer)
    closes: Mapped[int] = mapped_column(Integer)


class HoursException(Base):
    """One store day that differs from the usual hours: a holiday (closed: no hours) or a
    late-night opening. The counter code "*" applies to every counter."""

    __tablename__ = "reservation_hour_exceptions"
    __table_args__ = (
        UniqueConstraint("counter_code", "day", name="uq_reservation_hour_exceptions_day"),
        CheckConstraint("(opens IS NULL AND closes IS NULL) OR (opens >= 0 AND closes <= 1440 AND opens < closes)",
                        name="exception_sane"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter_code: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(String(64), default="")


class Resource(Base):
    """Who or what serves: a staff member, a station, a room; `capacity` shoppers at once."""

    __tablename__ = "reservation_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("reservation_services.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # staff, station, room
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())


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
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Where it was booked from (mp, h5, console, waitlist) and the payment it led to.
    channel: Mapped[str] = mapped_column(String(16), default="mp", server_default="mp")
    out_trade_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The short code on the shopper's reservation QR, scanned at the counter.
    visit_code: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)


class ShopperLoad(Base):
    """How many open bookings (booked, or waiting for the counter's confirmation) a shopper has:
    taken by a guarded UPDATE (`open_bookings < limit`), so the per-shopper limit holds under
    concurrent taps as capacity does."""

    __tablename__ = "reservation_shopper_load"
    __table_args__ = (CheckConstraint("open_bookings >= 0", name="open_bookings_not_negative"),)

    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_bookings: Mapped[int] = mapped_column(Integer, default=0)


class WaitlistEntry(Base):
    """A shopper waiting for a full slot of a service. A released unit is offered to the first
    waiting shopper and stays taken (`used` unchanged) while offered; the offer becomes a booking,
    or at `offered_until` passes to the next shopper (or back to the slot)."""

    __tablename__ = "reservation_waitlist"
    __table_args__ = (
        UniqueConstraint("service_id", "starts_at", "openid", name="uq_reservation_waitlist_shopper"),
        Index("ix_reservation_waitlist_slot", "service_id", "starts_at", "status"),
        Index("ix_reservation_waitlist_offers", "status", "offered_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("reservation_services.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # waiting, offered, booked, lapsed, left
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("reservation_resources.id"), nullable=True)
    offered_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("reservation_bookings.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notice(Base):
    """One message to a shopper about a reservation (confirmation, a reminder, a change, a
    cancellation, a waitlist offer). The unique (subject, kind) makes "at most one reminder of a
    kind per booking" a fact of the database, whatever the scheduler or the queue repeat."""

    __tablename__ = "reservation_notices"
    __table_args__ = (
        UniqueConstraint("subject", "kind", name="uq_reservation_notices_subject_kind"),
        Index("ix_reservation_notices_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(32))  # booking:<id>, hold:<id>, waitlist:<id>
    kind: Mapped[str] = mapped_column(String(32))  # confirmed, reminder_1440, changed, cancelled, offer:<n>...
    openid: Mapped[str] = mapped_column(String(64))
    # pending -> sending -> sent | failed | skipped; sending left by a killed worker: see jobs.py
    status: Mapped[str] = mapped_column(String(16), default="pending")
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)  # subscribe | template
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    wechat_errcode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
