"""Teams, agents and conversations. Times are UTC; `open_load` is a cache of the conversations an
agent holds (offered or assigned), kept by the same guarded UPDATEs that change ownership."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow

# A conversation's life: the FAQ answers first (bot), then it waits for a person (queued), is
# offered to one agent, who opens it (assigned), until it is resolved.
BOT, QUEUED, OFFERED, ASSIGNED, RESOLVED = "bot", "queued", "offered", "assigned", "resolved"
OPEN_STATES = (BOT, QUEUED, OFFERED, ASSIGNED)
ONLINE, AWAY = "online", "away"


class Team(Base):
    """A counter or a desk whose agents answer the conversations that come from it."""

    __tablename__ = "desk_teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))


class Agent(Base):
    """A staff member who answers chats, in one team, with a cap on conversations held at once."""

    __tablename__ = "desk_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("desk_teams.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=AWAY)
    max_open: Mapped[int] = mapped_column(Integer, default=5)
    open_load: Mapped[int] = mapped_column(Integer, default=0)
    last_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Conversation(Base):
    """One shopper's chat with the store, from the first 人工 to its resolution."""

    __tablename__ = "desk_conversations"
    __table_args__ = (
        # At most one open conversation per shopper: a second 人工 joins the open one.
        Index("uq_desk_conversations_open_openid", "openid", unique=True,
              postgresql_where=text("status <> 'resolved'"), sqlite_where=text("status <> 'resolved'")),
        Index("ix_desk_conversations_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("desk_teams.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(32))  # menu, keyword, mp_contact, ...
    context: Mapped[str] = mapped_column(Text, default="")  # session-from: a product, an order, a counter
    status: Mapped[str] = mapped_column(String(16), default=BOT)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("desk_agents.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    declined_by: Mapped[str] = mapped_column(Text, default="")  # agent ids an offer timed out on, "1,4"
