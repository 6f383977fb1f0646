"""Teams, agents and conversations. Times are UTC; `open_load` is a cache of the conversations an
agent holds (offered or assigned), kept by the same guarded UPDATEs that change ownership."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
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
    channel: Mapped[str] = mapped_column(String(8), default="oa", server_default="oa")  # oa or mp: whose API sends the answers
    bot_misses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # messages the FAQ could not answer
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # the assignee last opened it
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1..5, the shopper's one-tap rating
    csat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# What a desk message is. Inbound messages are not here: they are the webhook's push records
# (inbound_pushes.conversation_id), stored once.
OUT, NOTE, BOT_ANSWER, EVENT = "out", "note", "bot", "event"
# The WeChat outcome of an outbound message.
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


class Message(Base):
    """What the store said in a conversation (an agent's answer, the FAQ's answer), a private note
    between agents, or an event line (queued, offered, transferred, resolved). Outbound answers
    carry their WeChat outcome: the errcode and errmsg WeChat refused them with, shown to the agent."""

    __tablename__ = "desk_messages"
    __table_args__ = (
        # A double-clicked send (or a retried request) stores one message.
        UniqueConstraint("conversation_id", "client_key", name="uq_desk_messages_client_key"),
        Index("ix_desk_messages_conversation_created", "conversation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("desk_conversations.id"))
    direction: Mapped[str] = mapped_column(String(8))  # out, note, bot, event
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text, image, template, msgmenu
    body: Mapped[str] = mapped_column(Text, default="")
    media_id: Mapped[str] = mapped_column(String(128), default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("desk_agents.id"), nullable=True)
    client_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=SENT)
    wechat_errcode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wechat_errmsg: Mapped[str] = mapped_column(String(256), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FaqEntry(Base):
    """An answer the desk gives before a person does. `pattern` is keywords separated by | (any
    one found in the message) or, with is_regex, a regular expression; the highest priority wins."""

    __tablename__ = "desk_faq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(String(128))
    pattern: Mapped[str] = mapped_column(String(512))
    is_regex: Mapped[bool] = mapped_column(Boolean, default=False)
    answer: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedReply(Base):
    """A saved answer an agent inserts by its shortcut: shared (owner None) or one agent's own."""

    __tablename__ = "desk_canned_replies"
    __table_args__ = (
        Index("uq_desk_canned_shared_shortcut", "shortcut", unique=True,
              postgresql_where=text("owner_id IS NULL"), sqlite_where=text("owner_id IS NULL")),
        UniqueConstraint("owner_id", "shortcut", name="uq_desk_canned_owner_shortcut"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("desk_agents.id"), nullable=True)


class PhoneReveal(Base):
    """Append-only: which agent saw which member's full phone number, when, in which conversation."""

    __tablename__ = "desk_phone_reveals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("desk_agents.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("desk_conversations.id"), nullable=True)
    revealed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
