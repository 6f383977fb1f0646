"""Followers and their scans (O2O attribution); members, cards, the points ledger, coupons."""
from __future__ import annotations

from datetime import date, datetime

from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wx_service.ground.db import Base, UTCDateTime, utcnow


class Follower(Base):
    """A shopper as the OA knows them. Unfollowing marks the row; nothing is deleted."""

    __tablename__ = "followers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    subscribed: Mapped[bool] = mapped_column(default=True)
    first_subscribed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The QR scene of the first follow: which counter or campaign brought this shopper in.
    first_scene: Mapped[str] = mapped_column(String(64), default="")
    profile_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the OA last answered a LOCATION report with the nearest store (the report itself comes
    # as often as every 5 s; no coordinates are kept).
    location_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    scans: Mapped[list["FollowerScan"]] = relationship(back_populates="follower", order_by="FollowerScan.id")


class FollowerScan(Base):
    """Every QR scan (follow-via-QR or SCAN), so each online touch can be traced offline."""

    __tablename__ = "follower_scans"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    follower_id: Mapped[int] = mapped_column(ForeignKey("followers.id"), index=True)
    scene: Mapped[str] = mapped_column(String(64), index=True)
    subscribed_by_scan: Mapped[bool] = mapped_column(default=False)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    follower: Mapped[Follower] = relationship(back_populates="scans")


# -- membership ------------------------------------------------------------------------------------

class Member(Base):
    """One shopper, whichever way they reach the store (OA, mini-program, card).

    Found by unionid where WeChat gives it, by verified phone otherwise. A member found to be the
    same person as another is merged into it: `status` becomes merged, `merged_into_id` points at
    the survivor, and its points move over through the ledger."""

    __tablename__ = "members"
    __table_args__ = (CheckConstraint("points_balance >= 0", name="points_balance_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unionid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="")
    # A cache of the ledger: always equal to the last entry's balance_after.
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | merged
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberIdentity(Base):
    """An openid that belongs to a member: the OA's (kind 'oa') or the mini-program's ('mp')."""

    __tablename__ = "member_identities"
    __table_args__ = (UniqueConstraint("kind", "openid", name="uq_member_identities_kind_openid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    openid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberCard(Base):
    """A WeChat member card a shopper holds. Deleting the card in WeChat marks it; the member stays."""

    __tablename__ = "member_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    card_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | active | deleted
    outer_str: Mapped[str] = mapped_column(String(128), default="")  # the channel it was claimed from
    source_scene: Mapped[str] = mapped_column(String(64), default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The newest ledger entry and level WeChat's card face has been told about.
    synced_ledger_id: Mapped[int] = mapped_column(BigInteger, default=0)
    synced_level: Mapped[str] = mapped_column(String(16), default="")


class Staff(Base):
    """A store employee who can adjust points, approve adjustments and redeem coupons."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    # werkzeug's salted scrypt/pbkdf2 hash; empty: this person cannot sign in to the console.
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped by a deactivation and a password reset: a console session carries the epoch it signed
    # in under, and one from an older epoch is refused, so a reactivation or a new password does
    # not bring an old cookie back to life (members.staff, console auth).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PointsEntry(Base):
    """The points ledger: append-only. Every entry has a reason and a unique source key, so the
    same payment, refund, promotion or adjustment can never count twice."""

    __tablename__ = "points_ledger"
    __table_args__ = (CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    # payment | refund | promotion | redemption | staff_adjustment | expiry | merge_in | merge_out
    reason: Mapped[str] = mapped_column(String(24))
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    # For a refund: the payment it reverses. For earned points: the year they count toward expiry.
    ref_key: Mapped[str] = mapped_column(String(160), default="", index=True)
    earned_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    note: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SpendRecord(Base):
    """What a member spent (refunds negative), for levels. One row per payment or refund."""

    __tablename__ = "member_spend"
    __table_args__ = (Index("ix_member_spend_member_id_occurred_at", "member_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    ref_key: Mapped[str] = mapped_column(String(160), default="", index=True)


class LevelChange(Base):
    """Each change of level, with the spend that caused it."""

    __tablename__ = "member_level_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    from_level: Mapped[str] = mapped_column(String(16))
    to_level: Mapped[str] = mapped_column(String(16))
    spend_fen: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    """A coupon a benefit handed out: redeemed once, by its code, before it expires."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # birthday | anniversary | level_gift | promotion
    title: Mapped[str] = mapped_column(String(64))
    value_fen: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    # birthday:<member>:<year>, anniversary:<member>:<year>, level_gift:<member>:<level>: once each.
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    redeemed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)


class PointsAdjustment(Base):
    """A staff adjustment of points. Above the programme's limit it waits for a second staff
    member's approval before it reaches the ledger."""

    __tablename__ = "points_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(256))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | applied | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CardDefinition(Base):
    """The member card as created on WeChat: its card_id and the hash of what was pushed, so the
    push command creates once and updates only when the definition file changed."""

    __tablename__ = "card_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[str] = mapped_column(String(64), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    refuse_reason: Mapped[str] = mapped_column(String(256), default="")
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffRole(Base):
    """A role a staff member holds (members.staff.ROLES): `admin` (everything), `counter` (one
    counter's reservations and till, named by `counter_code`), `cashier`, `agent` (the desk; granted
    with the service_desk Agent row), `marketing`, `analyst`. One row per grant. A staff member with
    no role may sign in and see the console's home page, nothing else."""

    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("staff_id", "role", "counter_code", name="uq_staff_roles_grant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    counter_code: Mapped[str] = mapped_column(String(32), default="")


class SubscribeGrant(Base):
    """One "accept" a shopper gave in the mini-program's subscribe-message popup for a template:
    WeChat allows exactly one message per accept (reference §7.7). Spent by a guarded UPDATE that
    stamps `spent_at` and what it was spent on, so each grant carries one message at most."""

    __tablename__ = "subscribe_grants"
    __table_args__ = (Index("ix_subscribe_grants_unspent", "openid", "template_id", "spent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="mp")  # where the popup was shown
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    spent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    spent_for: Mapped[str] = mapped_column(String(64), default="")


class AuditEntry(Base):
    """One staff write, appended by `members.audit.record` in the writer's own unit of work (so a
    rolled-back write leaves no entry). Append-only: no code path updates or deletes a row, and the
    database refuses to (a trigger, see migration 0011). `staff_id` is NULL for a CLI run without
    a staff member; `subject` names what was written ("member:12", "order:N…", "booking:5")."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at_id", "at", "id"),
                      Index("ix_audit_entries_staff_id_at", "staff_id", "at"),
                      Index("ix_audit_entries_action", "action"),
                      Index("ix_audit_entries_subject", "subject"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(96), default="")
    before: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
