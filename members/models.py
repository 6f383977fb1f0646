"""Followers of the Official Account and the scans that brought them (O2O attribution)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wx_service.db import Base, UTCDateTime, utcnow


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
