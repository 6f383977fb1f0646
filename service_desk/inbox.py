"""STUB (deskui branch): the read side of the console inbox, minimal, so the console edge can be
built and tested. The fuller version from the read-side branch replaces this file at merge; the
names and shapes below are the agreed ones.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from members.models import Member, Staff
from service_desk import access, outbound
from service_desk.models import ASSIGNED, OFFERED, ONLINE, OPEN_STATES, QUEUED, RESOLVED, Agent, Conversation, Message, Team
from wx_service.ground.extensions import db, services
from wx_service.ground.logs import mask_openid
from wx_service.ground.models import InboundPush

VIEWS = ("queue", "mine", "open", "resolved")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class ConversationRow:
    id: int
    openid_masked: str
    member_name: str
    member_level: str
    source: str
    context: str
    status: str
    team_code: str | None
    assignee_id: int | None
    assignee_name: str
    created_at: str | None
    queued_at: str | None
    last_inbound_at: str | None
    unread: int
    preview: str
    offered_to_me: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ThreadItem:
    at: str | None
    direction: str  # in, out, bot, note, event
    kind: str
    body: str
    media_id: str = ""
    status: str = ""
    errcode: int | None = None
    errmsg: str = ""
    message_id: int | None = None
    agent_name: str = ""
    push_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _agent_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(Agent.id, Staff.name).join(Staff, Staff.id == Agent.staff_id)
                                   .where(Agent.id.in_(ids))).all())


def _unread(conversation: Conversation) -> int:
    query = select(func.count()).select_from(InboundPush).where(InboundPush.conversation_id == conversation.id)
    if conversation.read_at is not None:
        query = query.where(InboundPush.received_at > conversation.read_at)
    return int(db.session.scalar(query) or 0)


def _preview(conversation: Conversation) -> str:
    text = db.session.scalar(select(InboundPush.content).where(InboundPush.conversation_id == conversation.id)
                             .order_by(InboundPush.id.desc()).limit(1))
    return (text or "")[:60]


def list_conversations(agent: Agent, view: str) -> list[ConversationRow]:
    query = select(Conversation).where(access.visible_to(agent))
    if view == "queue":
        query = query.where(or_(Conversation.status == QUEUED,
                                (Conversation.status == OFFERED) & (Conversation.assignee_id == agent.id)))
    elif view == "mine":
        query = query.where(Conversation.assignee_id == agent.id, Conversation.status.in_((OFFERED, ASSIGNED)))
    elif view == "open":
        query = query.where(Conversation.status.in_(OPEN_STATES))
    elif view == "resolved":
        query = query.where(Conversation.status == RESOLVED)
    else:
        raise ValueError(f"no view {view!r}: one of {', '.join(VIEWS)}")
    order = Conversation.resolved_at.desc() if view == "resolved" else Conversation.created_at
    conversations = db.session.scalars(query.order_by(order, Conversation.id).limit(200)).all()
    names = _agent_names({c.assignee_id for c in conversations if c.assignee_id})
    teams = dict(db.session.execute(select(Team.id, Team.code)).all())
    members = {m.id: m for m in db.session.scalars(select(Member).where(
        Member.id.in_({c.member_id for c in conversations if c.member_id})))} if conversations else {}
    rows = []
    for c in conversations:
        member = members.get(c.member_id) if c.member_id else None
        rows.append(ConversationRow(
            id=c.id, openid_masked=mask_openid(c.openid), member_name=member.name if member else "",
            member_level=member.level if member else "", source=c.source, context=c.context, status=c.status,
            team_code=teams.get(c.team_id), assignee_id=c.assignee_id, assignee_name=names.get(c.assignee_id, ""),
            created_at=_iso(c.created_at), queued_at=_iso(c.queued_at), last_inbound_at=_iso(c.last_inbound_at),
            unread=_unread(c) if c.assignee_id == agent.id else 0, preview=_preview(c),
            offered_to_me=c.status == OFFERED and c.assignee_id == agent.id))
    return rows


def counts(agent: Agent) -> dict[str, int]:
    mine = list_conversations(agent, "mine")
    return {"queue": len(list_conversations(agent, "queue")), "mine": len(mine),
            "open": len(list_conversations(agent, "open")), "unread_mine": sum(r.unread for r in mine)}


def thread(agent: Agent, conversation_id: int) -> list[ThreadItem]:
    conversation = access.conversation_for(agent, conversation_id)
    items: list[tuple[datetime, int, ThreadItem]] = []
    for push in db.session.scalars(select(InboundPush).where(InboundPush.conversation_id == conversation.id)):
        items.append((push.received_at, 0, ThreadItem(
            at=_iso(push.received_at), direction="in", kind=push.msg_type, body=push.content,
            media_id=push.media_id, push_id=push.id)))
    messages = db.session.scalars(select(Message).where(Message.conversation_id == conversation.id)).all()
    names = _agent_names({m.agent_id for m in messages if m.agent_id})
    for m in messages:
        items.append((m.created_at, 1, ThreadItem(
            at=_iso(m.created_at), direction=m.direction, kind=m.kind, body=m.body, media_id=m.media_id,
            status=m.status, errcode=m.wechat_errcode, errmsg=m.wechat_errmsg, message_id=m.id,
            agent_name=names.get(m.agent_id, "") if m.agent_id else "")))
    items.sort(key=lambda t: (t[0], t[1]))
    return [item for _, _, item in items]


def header(agent: Agent, conversation_id: int) -> dict[str, object]:
    c = access.conversation_for(agent, conversation_id)
    member = db.session.get(Member, c.member_id) if c.member_id else None
    team = db.session.get(Team, c.team_id) if c.team_id else None
    return {"id": c.id, "status": c.status, "assignee": c.assignee_id,
            "assignee_name": _agent_names({c.assignee_id}).get(c.assignee_id, "") if c.assignee_id else "",
            "mine": c.assignee_id == agent.id and c.status == ASSIGNED,
            "offered_to_me": c.status == OFFERED and c.assignee_id == agent.id,
            "offered_at": _iso(c.offered_at), "offer_seconds": services().settings.DESK_OFFER_SECONDS,
            "openid_masked": mask_openid(c.openid), "member_name": member.name if member else "",
            "source": c.source, "context": c.context, "team_code": team.code if team else None,
            "csat": c.csat, "window": outbound.window_of(c).as_dict(),
            "fallback_available": outbound.fallback_available()}


def agents_on_duty(agent: Agent) -> list[dict[str, object]]:
    rows = db.session.execute(select(Agent, Staff.name).join(Staff, Staff.id == Agent.staff_id)
                              .where(Agent.team_id == agent.team_id).order_by(Agent.id)).all()
    return [{"id": a.id, "name": name, "status": a.status, "load": a.open_load, "max_open": a.max_open,
             "online": a.status == ONLINE} for a, name in rows]


def teams() -> list[dict[str, object]]:
    return [{"id": t.id, "code": t.code, "name": t.name}
            for t in db.session.scalars(select(Team).order_by(Team.id))]
