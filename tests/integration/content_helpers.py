"""Helpers shared by the content tests: pictures, a brand and store, the audit entries of a subject."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from members.models import AuditEntry
from wx_service.edges.demo_content import solid_png

SHANGHAI_OFFSET = timezone(timedelta(hours=8))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"


def png(rgb: tuple[int, int, int] = (200, 30, 60), size: int = 8) -> bytes:
    return solid_png(size, size, rgb)


def entries(session, prefix: str = "content.") -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action.like(prefix + "%")).order_by(AuditEntry.id)))


def at(days: float = 0, hours: float = 0) -> datetime:
    """An instant relative to now, in store time (as the console sends it)."""
    return (datetime.now(timezone.utc) + timedelta(days=days, hours=hours)).astimezone(SHANGHAI_OFFSET)
