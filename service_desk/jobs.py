"""Background work of the desk: offers nobody opened in time go to the next agent."""
from __future__ import annotations

import logging
from datetime import datetime

from service_desk import service
from service_desk.exceptions import AlreadyTaken
from wx_service.ground.extensions import db

log = logging.getLogger(__name__)

OFFER_SECONDS = 45  # how long an agent has to open an offered conversation


def sweep_offers(now: datetime | None = None, seconds: float = OFFER_SECONDS) -> int:
    """Every minute: each offer older than `seconds` goes back to the queue and on to the next
    agent (the one who let it lapse is skipped). Each conversation in its own savepoint, so one
    that changed meanwhile does not stop the rest. Returns how many offers were moved."""
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
    return moved
