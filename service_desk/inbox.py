"""What the console shows an agent: the conversation lists and their counts, one conversation's
thread and header, who is on duty. Read only: nothing here writes, so a page can call any of it
as often as it re-reads (every console event is only "something changed, read again").

Every list goes through `access.visible_to` and every single conversation through
`access.conversation_for`, so an agent of one counter never sees another counter's chats. A list
costs three queries however long it is (rows, unread counts, previews), never one per row.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from members.models import Member, Staff
from service_desk import access, outbound
from service_desk.models import (
    ASSIGNED,
    BOT_ANSWER,
    EVENT,
    NOTE,
    OFFERED,
    ONLINE,
    OPEN_STATES,
    OUT,
    QUEUED,
    RESOLVED,
    Agent,
    Conversation,
    Message,
    Team,
)
from wx_service.ground.extensions import db
from wx_service.ground.logs import mask_openid
from wx_service.ground.models import InboundPush

VIEWS = ("queue", "mine", "open", "resolved")
PREVIEW_CHARS = 60
MAX_LIMIT = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class ConversationRow:
    """One line of an inbox list."""

    id: int
    openid_masked: str
    member_id: int | None
    member_name: str
    member_level: str
    source: str
    context: str
    status: str
    team_code: str | None
    assignee_id: int | None
    assignee_name: str | None
    created_at: datetime
    queued_at: datetime | None
    last_inbound_at: datetime | None
    unread: int
    preview: str
    offered_to_me: bool
    channel: str = "oa"
    resolved_at: datetime | None = None
    csat: int | None = None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("created_at", "queued_at", "last_inbound_at", "resolved_at"):
            out[key] = _iso(out[key])
        return out


def _unread_condition():
    """An inbound push the conversation's owner has not seen: after read_at, or any when never read."""
    return or_(Conversation.read_at.is_(None), InboundPush.received_at > Conversation.read_at)


def _view_filter(agent: Agent, view: str) -> tuple[list, tuple]:
    oldest_first = (func.coalesce(Conversation.queued_at, Conversation.created_at), Conversation.id)
    if view == "queue":  # waiting for a person: in the queue, or offered to this agent to accept
        return [or_(Conversation.status == QUEUED,
                    and_(Conversation.status == OFFERED, Conversation.assignee_id == agent.id))], oldest_first
    if view == "mine":
        return [Conversation.assignee_id == agent.id, Conversation.status.in_((OFFERED, ASSIGNED))], oldest_first
    if view == "open":
        return [Conversation.status.in_(OPEN_STATES)], oldest_first
    if view == "resolved":
        return [Conversation.status == RESOLVED], (Conversation.resolved_at.desc(), Conversation.id.desc())
    raise ValueError(f"unknown view {view!r}: one of {', '.join(VIEWS)}")


def list_conversations(agent: Agent, view: str, *, limit: int = 50) -> list[ConversationRow]:
    """One inbox view ("queue", "mine", "open", "resolved") as the agent may see it. The queue and
    an agent's own list are oldest first (who waited longest is answered first); resolved newest
    first. ValueError for any other view."""
    where, order = _view_filter(agent, view)
    limit = max(1, min(int(limit), MAX_LIMIT))
    assignee, assignee_staff = aliased(Agent), aliased(Staff)
    rows = db.session.execute(
        select(Conversation, Member.name, Member.level, Team.code, assignee_staff.name)
        .outerjoin(Member, Member.id == Conversation.member_id)
        .outerjoin(Team, Team.id == Conversation.team_id)
        .outerjoin(assignee, assignee.id == Conversation.assignee_id)
        .outerjoin(assignee_staff, assignee_staff.id == assignee.staff_id)
        .where(access.visible_to(agent), *where).order_by(*order).limit(limit)).all()
    ids = [row[0].id for row in rows]
    unread = _unread_counts(ids)
    previews = _previews(ids)
    return [ConversationRow(
        id=c.id, openid_masked=mask_openid(c.openid), member_id=c.member_id, member_name=member_name or "",
        member_level=member_level or "", source=c.source, context=c.context, status=c.status, team_code=team_code,
        assignee_id=c.assignee_id, assignee_name=assignee_name, created_at=c.created_at, queued_at=c.queued_at,
        last_inbound_at=c.last_inbound_at, unread=unread.get(c.id, 0), preview=previews.get(c.id, ""),
        offered_to_me=c.status == OFFERED and c.assignee_id == agent.id, channel=c.channel,
        resolved_at=c.resolved_at, csat=c.csat)
        for c, member_name, member_level, team_code, assignee_name in rows]


def _unread_counts(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(db.session.execute(
        select(InboundPush.conversation_id, func.count())
        .join(Conversation, Conversation.id == InboundPush.conversation_id)
        .where(InboundPush.conversation_id.in_(ids), _unread_condition())
        .group_by(InboundPush.conversation_id)).all())


def _previews(ids: list[int]) -> dict[int, str]:
    """The last text (or voice transcript) the shopper sent in each conversation, cut to 60 chars."""
    if not ids:
        return {}
    last = (select(func.max(InboundPush.id).label("id"))
            .where(InboundPush.conversation_id.in_(ids), InboundPush.msg_type.in_(("text", "voice")))
            .group_by(InboundPush.conversation_id).subquery())
    found = db.session.execute(select(InboundPush.conversation_id, InboundPush.content)
                               .join(last, last.c.id == InboundPush.id)).all()
    return {conversation_id: _cut(content) for conversation_id, content in found}


def _cut(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def counts(agent: Agent) -> dict[str, int]:
    """The numbers on the inbox tabs: queue, mine, open, and unread_mine (shopper messages the
    agent has not seen yet, across the conversations offered or assigned to them). Two queries."""
    mine = and_(Conversation.assignee_id == agent.id, Conversation.status.in_((OFFERED, ASSIGNED)))
    queue_n, mine_n, open_n = db.session.execute(select(
        func.coalesce(func.sum(case((or_(Conversation.status == QUEUED, and_(
            Conversation.status == OFFERED, Conversation.assignee_id == agent.id)), 1), else_=0)), 0),
        func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
        func.coalesce(func.sum(case((Conversation.status.in_(OPEN_STATES), 1), else_=0)), 0))
        .where(access.visible_to(agent), Conversation.status != RESOLVED)).one()
    unread = db.session.scalar(select(func.count()).select_from(InboundPush)
                               .join(Conversation, Conversation.id == InboundPush.conversation_id)
                               .where(mine, _unread_condition()))
    return {"queue": int(queue_n), "mine": int(mine_n), "open": int(open_n), "unread_mine": int(unread or 0)}


@dataclass
class ThreadItem:
    """One line of a conversation: what the shopper sent ("in"), what the store answered ("out"),
    the FAQ's answer ("bot"), a private note ("note") or an event line ("event")."""

    at: datetime
    direction: str
    kind: str
    body: str
    media_id: str
    status: str
    errcode: int | None
    errmsg: str
    message_id: int | None
    agent_name: str | None
    push_id: int | None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["at"] = _iso(self.at)
        return out


_DIRECTIONS = {OUT: "out", NOTE: "note", BOT_ANSWER: "bot", EVENT: "event"}
# A push whose recorded response is a passive reply (the FAQ's answer, the queue's words) was
# answered by the webhook itself; "success" or nothing means it waited for a person.
_NO_PASSIVE_REPLY = ("", "success")


def thread(agent: Agent, conversation_id: int) -> list[ThreadItem]:
    """The conversation's shopper messages and desk messages merged in time order (oldest
    first; at the same instant the shopper's message comes before what answered it).
    UnknownConversation when the agent may not see it."""
    conversation = access.conversation_for(agent, conversation_id)
    pushes = db.session.scalars(select(InboundPush).where(InboundPush.conversation_id == conversation.id)
                                .order_by(InboundPush.id)).all()
    author, author_staff = aliased(Agent), aliased(Staff)
    messages = db.session.execute(
        select(Message, author_staff.name).outerjoin(author, author.id == Message.agent_id)
        .outerjoin(author_staff, author_staff.id == author.staff_id)
        .where(Message.conversation_id == conversation.id).order_by(Message.id)).all()
    items: list[tuple[tuple, ThreadItem]] = []
    for push in pushes:
        replied = push.response.strip() not in _NO_PASSIVE_REPLY
        items.append(((push.received_at, 0, push.id), ThreadItem(
            at=push.received_at, direction="in", kind=push.msg_type, body=push.content, media_id=push.media_id,
            status="replied" if replied else "received", errcode=None, errmsg="", message_id=None,
            agent_name=None, push_id=push.id)))
    for message, agent_name in messages:
        direction = _DIRECTIONS.get(message.direction, message.direction)
        items.append(((message.created_at, 1, message.id), ThreadItem(
            at=message.created_at, direction=direction, kind="event" if direction == "event" else message.kind,
            body=message.body, media_id=message.media_id, status=message.status, errcode=message.wechat_errcode,
            errmsg=message.wechat_errmsg, message_id=message.id, agent_name=agent_name, push_id=None)))
    items.sort(key=lambda pair: pair[0])
    return [item for _key, item in items]


def header(agent: Agent, conversation_id: int) -> dict[str, object]:
    """What the top of an open conversation shows: who, where from, who holds it, and WeChat's
    window (whether an answer can go now, and whether the template can go instead)."""
    conversation = access.conversation_for(agent, conversation_id)
    team = db.session.get(Team, conversation.team_id) if conversation.team_id is not None else None
    member = db.session.get(Member, conversation.member_id) if conversation.member_id is not None else None
    assignee_name = None
    if conversation.assignee_id is not None:
        assignee_name = db.session.scalar(select(Staff.name).join(Agent, Agent.staff_id == Staff.id)
                                          .where(Agent.id == conversation.assignee_id))
    return {
        "id": conversation.id, "openid_masked": mask_openid(conversation.openid), "channel": conversation.channel,
        "member_id": conversation.member_id, "member_name": member.name if member else "",
        "member_level": member.level if member else "",
        "source": conversation.source, "context": conversation.context, "status": conversation.status,
        "team": {"id": team.id, "code": team.code, "name": team.name} if team else None,
        "assignee_id": conversation.assignee_id, "assignee_name": assignee_name,
        "created_at": _iso(conversation.created_at), "queued_at": _iso(conversation.queued_at),
        "offered_at": _iso(conversation.offered_at), "assigned_at": _iso(conversation.assigned_at),
        "resolved_at": _iso(conversation.resolved_at), "first_response_at": _iso(conversation.first_response_at),
        "last_inbound_at": _iso(conversation.last_inbound_at), "read_at": _iso(conversation.read_at),
        "csat": conversation.csat,
        "window": outbound.window_of(conversation).as_dict(),
        "fallback_available": outbound.fallback_available(),
        "mine": conversation.status == ASSIGNED and conversation.assignee_id == agent.id,
        "offered_to_me": conversation.status == OFFERED and conversation.assignee_id == agent.id,
    }


def agents_on_duty(agent: Agent) -> list[dict[str, object]]:
    """The agent's team mates (and the agent), online first, least loaded first: whom a
    conversation can be transferred to (`status` says who is online now)."""
    rows = db.session.execute(
        select(Agent, Staff.name, Team.code).join(Staff, Staff.id == Agent.staff_id)
        .join(Team, Team.id == Agent.team_id).where(Agent.team_id == agent.team_id)).all()
    rows.sort(key=lambda r: (r[0].status != ONLINE, r[0].open_load, r[1], r[0].id))
    return [{"id": a.id, "name": name, "team": team_code, "status": a.status, "open_load": a.open_load,
             "max_open": a.max_open, "me": a.id == agent.id} for a, name, team_code in rows]


def teams() -> list[dict[str, object]]:
    """Every team with how many of its agents are online: the transfer picker's other half."""
    online = func.coalesce(func.sum(case((Agent.status == ONLINE, 1), else_=0)), 0)
    rows = db.session.execute(select(Team.id, Team.code, Team.name, online, func.count(Agent.id))
                              .outerjoin(Agent, Agent.team_id == Team.id)
                              .group_by(Team.id, Team.code, Team.name).order_by(Team.code)).all()
    return [{"id": team_id, "code": code, "name": name, "online": int(n_online), "agents": int(n_agents)}
            for team_id, code, name, n_online, n_agents in rows]
