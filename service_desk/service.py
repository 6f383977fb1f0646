"""Conversations and who owns them. Flush, never commit.

Ownership changes are guarded UPDATEs (`... WHERE status = 'queued'`, `... WHERE open_load <
max_open`) whose row count says who won: on Postgres a second writer waits for the first one's row
lock and then re-checks the WHERE against the committed row, so of twenty agents taking one
conversation at once exactly one updates it, and no agent's load passes their cap however many
offers run together. Rows are always locked agent first, then conversation, so two of these
never wait on each other in a circle.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service_desk import events
from service_desk.exceptions import AlreadyTaken, AtCapacity, UnknownConversation
from service_desk.models import ASSIGNED, BOT, OFFERED, ONLINE, OPEN_STATES, QUEUED, RESOLVED, Agent, Conversation, Team
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db


def open_conversation_of(openid: str) -> Conversation | None:
    return db.session.scalar(select(Conversation).where(Conversation.openid == openid,
                                                        Conversation.status.in_(OPEN_STATES)))


def open_conversation(openid: str, source: str, *, team_code: str | None = None, context: str = "",
                      member_id: int | None = None) -> Conversation:
    """The shopper's open conversation, started now if there is none. A second 人工 (or two
    pushes racing) joins the open one: the partial unique index on openid decides."""
    existing = open_conversation_of(openid)
    if existing is not None:
        return existing
    team_id = db.session.scalar(select(Team.id).where(Team.code == team_code)) if team_code else None
    conversation = Conversation(openid=openid, source=source[:32], context=context[:2000], member_id=member_id,
                                team_id=team_id, status=BOT, created_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(conversation)
    except IntegrityError:
        found = open_conversation_of(openid)
        if found is None:
            raise
        return found
    return conversation


def _get(conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id, populate_existing=True)
    if conversation is None:
        raise UnknownConversation(f"no conversation {conversation_id}")
    return conversation


def queue(conversation_id: int, now: datetime | None = None) -> Conversation:
    """From the FAQ to the queue for a person (转人工, or a second unanswered message)."""
    moved = db.session.execute(update(Conversation).where(Conversation.id == conversation_id, Conversation.status == BOT)
                               .values(status=QUEUED, queued_at=now or utcnow())).rowcount
    conversation = _get(conversation_id)
    if moved:
        events.publish_after_commit("queued", conversation)
    return conversation


def _add_load(agent_id: int, now: datetime | None = None, *, online_only: bool = False) -> bool:
    """One more conversation for the agent, if it stays within their cap (and they are online)."""
    guard = [Agent.id == agent_id, Agent.open_load < Agent.max_open]
    if online_only:
        guard.append(Agent.status == ONLINE)
    values = {"open_load": Agent.open_load + 1}
    if now is not None:
        values["last_offered_at"] = now
    return db.session.execute(update(Agent).where(*guard).values(**values)).rowcount == 1


def _drop_load(agent_id: int) -> None:
    db.session.execute(update(Agent).where(Agent.id == agent_id, Agent.open_load > 0)
                       .values(open_load=Agent.open_load - 1))


def take(conversation_id: int, agent_id: int, now: datetime | None = None) -> Conversation:
    """The agent takes the conversation: their own offer, or one waiting in the queue. Raises
    AlreadyTaken when someone else has it, AtCapacity when the agent's cap is reached."""
    now = now or utcnow()
    mine = db.session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.status == OFFERED, Conversation.assignee_id == agent_id)
        .values(status=ASSIGNED, assigned_at=now)).rowcount
    if mine:
        conversation = _get(conversation_id)
        events.publish_after_commit("assigned", conversation)
        return conversation
    if not _add_load(agent_id):
        raise AtCapacity("you already hold as many conversations as your cap allows; resolve one first")
    won = db.session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.status == QUEUED)
        .values(status=ASSIGNED, assignee_id=agent_id, assigned_at=now)).rowcount
    if not won:
        _get(conversation_id)  # UnknownConversation when there is no such conversation
        raise AlreadyTaken("another agent has this conversation now")  # the caller rolls back the load
    conversation = _get(conversation_id)
    events.publish_after_commit("assigned", conversation)
    return conversation


def offer_next(conversation_id: int, now: datetime | None = None) -> Agent | None:
    """Offer a queued conversation to the least-loaded online agent of its team who is under their
    cap and has not let it time out before; None (it stays queued) when nobody can take it."""
    now = now or utcnow()
    conversation = _get(conversation_id)
    if conversation.status != QUEUED:
        raise AlreadyTaken(f"conversation {conversation_id} is {conversation.status}, not queued")
    declined = {int(x) for x in conversation.declined_by.split(",") if x}
    candidates = select(Agent.id).where(Agent.status == ONLINE, Agent.open_load < Agent.max_open)
    if conversation.team_id is not None:
        candidates = candidates.where(Agent.team_id == conversation.team_id)
    if declined:
        candidates = candidates.where(Agent.id.not_in(declined))
    order = (Agent.open_load, Agent.last_offered_at.is_not(None), Agent.last_offered_at, Agent.id)
    for agent_id in db.session.scalars(candidates.order_by(*order)).all():
        if not _add_load(agent_id, now, online_only=True):
            continue  # filled up or went away since the read: the next one
        offered = db.session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.status == QUEUED)
            .values(status=OFFERED, assignee_id=agent_id, offered_at=now)).rowcount
        if not offered:
            raise AlreadyTaken(f"conversation {conversation_id} was taken meanwhile")
        events.publish_after_commit("offered", _get(conversation_id), agent=agent_id)
        return db.session.get(Agent, agent_id, populate_existing=True)
    return None


def expire_offer(conversation_id: int, agent_id: int) -> bool:
    """The agent did not open their offer in time: back to the queue, and that agent is skipped
    when it is offered again. False (nothing changed) when it was taken or resolved meanwhile."""
    conversation = _get(conversation_id)
    declined = ",".join(filter(None, [conversation.declined_by, str(agent_id)]))
    with db.session.begin_nested() as step:  # agent row first, as everywhere; undone if not ours
        _drop_load(agent_id)
        back = db.session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.status == OFFERED, Conversation.assignee_id == agent_id)
            .values(status=QUEUED, assignee_id=None, offered_at=None, declined_by=declined)).rowcount
        if not back:
            step.rollback()
    if back:
        events.publish_after_commit("requeued", _get(conversation_id), from_agent=agent_id)
    return bool(back)


def offers_older_than(seconds: float, now: datetime | None = None) -> list[tuple[int, int]]:
    """(conversation id, agent id) of offers nobody opened within `seconds` (for the sweep)."""
    cutoff = (now or utcnow()) - timedelta(seconds=seconds)
    return [(conversation_id, agent_id) for conversation_id, agent_id in db.session.execute(
        select(Conversation.id, Conversation.assignee_id).where(Conversation.status == OFFERED,
                                                               Conversation.offered_at <= cutoff))]


def resolve(conversation_id: int, agent_id: int, now: datetime | None = None) -> Conversation:
    """The agent who owns the conversation closes it; their load goes down by one. Raises
    AlreadyTaken (the caller's unit of work rolls back) when it is not theirs to close."""
    _drop_load(agent_id)  # agent row first, as everywhere
    done = db.session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.status == ASSIGNED, Conversation.assignee_id == agent_id)
        .values(status=RESOLVED, resolved_at=now or utcnow())).rowcount
    if not done:
        _get(conversation_id)
        raise AlreadyTaken("only the agent who owns an open conversation can resolve it")
    conversation = _get(conversation_id)
    events.unmark_after_commit(conversation.openid)
    events.publish_after_commit("resolved", conversation)
    return conversation


def offer_waiting(now: datetime | None = None, limit: int = 200) -> int:
    """Offer queued conversations, oldest first, to whoever can take them now (an agent came
    online, one resolved a conversation, the minute's sweep). Each in its own savepoint, so one
    taken meanwhile does not stop the rest. Returns how many were offered."""
    waiting = db.session.scalars(select(Conversation.id).where(Conversation.status == QUEUED)
                                 .order_by(Conversation.queued_at, Conversation.id).limit(limit)).all()
    offered = 0
    for conversation_id in waiting:
        try:
            with db.session.begin_nested():
                offered += offer_next(conversation_id, now) is not None
        except AlreadyTaken:
            continue
    return offered


def set_status(agent_id: int, status: str) -> Agent:
    """Online or away. Going online picks up what waited in the queue."""
    if status not in (ONLINE, "away"):
        raise ValueError("an agent is online or away")
    db.session.execute(update(Agent).where(Agent.id == agent_id).values(status=status))
    if status == ONLINE:
        offer_waiting()
    agent = db.session.get(Agent, agent_id, populate_existing=True)
    if agent is None:
        raise LookupError(f"no agent {agent_id}")
    events.publish_agent_after_commit(agent)
    return agent


def transfer(conversation_id: int, from_agent_id: int, *, to_agent_id: int | None = None,
             to_team_id: int | None = None, now: datetime | None = None) -> Conversation:
    """The owner hands the conversation on: to one agent (offered to them, under their cap) or to a
    team's queue (offered to its least-loaded online agent). Both agent rows are locked in id
    order, so two transfers crossing each other never deadlock."""
    now = now or utcnow()
    if (to_agent_id is None) == (to_team_id is None):
        raise ValueError("transfer to an agent or to a team")
    if to_agent_id == from_agent_id:
        raise ValueError("the conversation is already yours")
    if to_agent_id is not None:
        first, second = sorted((from_agent_id, to_agent_id))
        db.session.execute(select(Agent.id).where(Agent.id.in_((first, second))).order_by(Agent.id).with_for_update())
        if db.session.get(Agent, to_agent_id) is None:
            raise LookupError(f"no agent {to_agent_id}")
        if not _add_load(to_agent_id, now):
            raise AtCapacity("that agent already holds as many conversations as their cap allows")
        _drop_load(from_agent_id)
        moved = db.session.execute(update(Conversation).where(
            Conversation.id == conversation_id, Conversation.status == ASSIGNED,
            Conversation.assignee_id == from_agent_id)
            .values(status=OFFERED, assignee_id=to_agent_id, offered_at=now, read_at=None)).rowcount
        if not moved:
            _get(conversation_id)
            raise AlreadyTaken("only the agent who owns an open conversation can transfer it")
        conversation = _get(conversation_id)
        events.publish_after_commit("offered", conversation, agent=to_agent_id, from_agent=from_agent_id)
        return conversation
    if db.session.get(Team, to_team_id) is None:
        raise LookupError(f"no team {to_team_id}")
    from_team = db.session.scalar(select(Conversation.team_id).where(Conversation.id == conversation_id))
    _drop_load(from_agent_id)
    moved = db.session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.status == ASSIGNED, Conversation.assignee_id == from_agent_id)
        .values(status=QUEUED, assignee_id=None, team_id=to_team_id, offered_at=None, read_at=None,
                declined_by=str(from_agent_id))).rowcount
    if not moved:
        _get(conversation_id)
        raise AlreadyTaken("only the agent who owns an open conversation can transfer it")
    events.publish_after_commit("requeued", _get(conversation_id), from_agent=from_agent_id, from_team=from_team)
    offer_next(conversation_id, now)
    return _get(conversation_id)


def mark_read(conversation_id: int, agent_id: int, now: datetime | None = None) -> None:
    """The owner opened the conversation: its unread count starts again from here."""
    db.session.execute(update(Conversation).where(Conversation.id == conversation_id,
                                                  Conversation.assignee_id == agent_id)
                       .values(read_at=now or utcnow()))
