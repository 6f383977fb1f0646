"""Protocol-side records: every push handled, the dedup store of record."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow


class InboundPush(Base):
    """One push from WeChat, handled once. The unique key is what makes a retry a no-op even when
    Redis has forgotten it; `response` is the exact body every retry gets back."""

    __tablename__ = "inbound_pushes"
    __table_args__ = (UniqueConstraint("appid", "dedup_key", name="uq_inbound_pushes_appid_dedup_key"),)

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
