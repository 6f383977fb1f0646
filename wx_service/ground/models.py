"""Protocol-side records: every push handled, the dedup store of record."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow


class InboundPush(Base):
    """One push from WeChat, handled once. The unique key is what makes a retry a no-op even when
    Redis has forgotten it; `response` is the exact body every retry gets back."""

    __tablename__ = "inbound_pushes"
    __table_args__ = (
        UniqueConstraint("appid", "dedup_key", name="uq_inbound_pushes_appid_dedup_key"),
        # Partial: most pushes belong to no conversation and cost this index nothing.
        Index("ix_inbound_pushes_conversation", "conversation_id", "id",
              postgresql_where=text("conversation_id IS NOT NULL"), sqlite_where=text("conversation_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str] = mapped_column(String(96))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64), default="")
    event_key: Mapped[str] = mapped_column(String(256), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    handler: Mapped[str] = mapped_column(String(128), default="")
    response: Mapped[str] = mapped_column(Text, default="")
    created_at_wechat: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A user message's media (image, voice): what the console fetches with media/get.
    media_id: Mapped[str] = mapped_column(String(128), default="", server_default="")
    # The customer-service conversation a user message belongs to, filled in by the webhook's own
    # INSERT from the shopper's open conversation (so a message is stored once, and linked even
    # when Redis forgot the shopper was in one). No foreign key: the ground does not know the desk.
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
