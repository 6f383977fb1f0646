"""What the live console hears: one Redis pub/sub channel per account, published after commit.

Events carry ids and a kind, not content: a console that hears one re-reads what it shows from
the database, so an event can never show something that was rolled back, and a lost event costs
only freshness (the console re-reads on reconnect). The same module keeps the Redis mark the
webhook's claim reads to know a shopper is in a conversation.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from sqlalchemy import Row, select

from service_desk.models import OPEN_STATES, Agent, Conversation
from wx_service.ground import redis_keys
from wx_service.ground.extensions import db, redis, services

log = logging.getLogger(__name__)


def channel() -> str:
    pool = getattr(redis(), "connection_pool", None)
    db_number = int((getattr(pool, "connection_kwargs", None) or {}).get("db") or 0)
    return redis_keys.desk_events(services().settings.WECHAT_APPID, db_number)


def _after_commit(label: str, action: Callable[[], object]) -> None:
    action.label = label  # type: ignore[attr-defined]  # named in the log if it fails
    db.after_commit(action)


def _publish_after_commit(event: dict[str, object]) -> None:
    def publish() -> None:
        event["at"] = time.time()
        redis().publish(channel(), json.dumps(event, separators=(",", ":")))

    _after_commit(f"desk event {event['kind']}", publish)


def publish_after_commit(kind: str, conversation: Conversation | Row, **data: object) -> None:
    """Tell every console about a change to `conversation` (the row, or a statement's returned id,
    status, team_id and assignee_id), once the transaction has committed."""
    _publish_after_commit({"kind": kind, "conversation": conversation.id, "team": conversation.team_id,
                           "status": conversation.status, "assignee": conversation.assignee_id, **data})


def publish_agent_after_commit(agent: Agent) -> None:
    """An agent went online or away: consoles refresh who is on duty."""
    _publish_after_commit({"kind": "agent", "agent": agent.id, "team": agent.team_id, "status": agent.status})


def mark_open_after_commit(openid: str, conversation_id: int) -> None:
    key = redis_keys.desk_open(services().settings.WECHAT_APPID, openid)

    _after_commit("desk mark open", lambda: redis().set(key.name, conversation_id, ex=key.ttl))


def unmark_after_commit(openid: str) -> None:
    key = redis_keys.desk_open(services().settings.WECHAT_APPID, openid)

    _after_commit("desk unmark", lambda: redis().delete(key.name))


def refresh_marks() -> int:
    """Write the mark again for every open conversation (after Redis lost its data, say). Marks of
    conversations closed meanwhile expire or are deleted on resolve. Returns how many were set."""
    appid = services().settings.WECHAT_APPID
    pipe = redis().pipeline(transaction=False)
    rows = db.session.execute(select(Conversation.openid, Conversation.id)
                              .where(Conversation.status.in_(OPEN_STATES))).all()
    for openid, conversation_id in rows:
        key = redis_keys.desk_open(appid, openid)
        pipe.set(key.name, conversation_id, ex=key.ttl)
    if rows:
        pipe.execute()
    return len(rows)
