"""Articles the OA shows, the store's opening information, and parametric QR codes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow

ARTICLE_KINDS = ("news", "activity", "brand", "new_product", "discount")


class Article(Base):
    """A piece of mall content: news, an activity, a brand recommendation, a new product, a discount."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    url: Mapped[str] = mapped_column(String(512), default="")
    image_url: Mapped[str] = mapped_column(String(512), default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    active: Mapped[bool] = mapped_column(default=True)


class StoreInfo(Base):
    """The department store's visiting information (one row per store)."""

    __tablename__ = "store_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(256))
    opening_hours: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32))


class QrCode(Base):
    """A parametric QR code made for a counter or a campaign; scans are traced back to it."""

    __tablename__ = "qr_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scene: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    permanent: Mapped[bool] = mapped_column(default=False)
    ticket: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Sent as a customer-service message after a scan, e.g. the counter's current offer.
    follow_up_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
