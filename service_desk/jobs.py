"""Background work of the desk, every minute: offers nobody opened in time go to the next agent,
the Redis marks of open conversations are written again, and answers WeChat never answered are
marked failed for the agent to retry."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from service_desk import events, service
from service_desk.exceptions import AlreadyTaken
from service_desk.models import FAILED, PENDING, Message
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services

log = logging.getLogger(__name__)


def sweep_offers(now: datetime | None = None, seconds: float | None = None) -> int:
    """Every minute: each offer older than `seconds` goes back to the queue and on to the next
    agent (the one who let it lapse is skipped). Each conversation in its own savepoint, so one
    that changed meanwhile does not stop the rest. Returns how many offers were moved."""
    if seconds is None:
        seconds = services().settings.DESK_OFFER_SECONDS
    moved = 0
    for conversation_id, agent_id in service.offers_older_than(seconds, now):
        try:
            with db.session.begin_nested():
                if service.expire_offer(conversation_id, agent_id):
                    moved += 1
                    offered = service.offer_next(conversation_id)
                    log.info("offer lapsed", extra={"conversation": conversation_id, "from_agent": agent_id,
                                                    "to_agent": offered.id if offered else None})
        except AlreadyTaken:
            continue  # opened or taken between the read and now: nothing to move
    service.offer_waiting(now)  # and whatever waits in the queue goes to whoever is free now
    return moved


def refresh_marks() -> int:
    """Every minute: the Redis marks of open conversations written again (they are a cache the
    webhook's claim reads; after Redis lost its data they come back within a minute)."""
    return events.refresh_marks()


def fail_stalled_messages(now: datetime | None = None) -> int:
    """Every minute: an answer still pending after every retry the queue allows (WeChat never
    answered) is marked failed, so the agent sees it and can send it again. Returns how many."""
    intervals = services().settings.JOB_RETRY_INTERVALS
    cutoff = (now or utcnow()) - timedelta(seconds=sum(intervals) + 300)
    return db.session.execute(update(Message).where(Message.status == PENDING, Message.created_at < cutoff)
                              .values(status=FAILED, wechat_errmsg="WeChat did not answer after every retry; "
                                                                   "send it again")).rowcount
