"""Live updates for the desk's inbox: GET /console/api/desk/stream, Server-Sent Events.

Why SSE and not websockets: the traffic is one way (server to browser: "something changed"; every
action the agent takes is an ordinary POST with its CSRF header); SSE is plain HTTP, so it passes
the store's proxies and the session cookie guard like any other console call; the browser's
EventSource reconnects by itself (the page then re-reads everything); and it needs no upgrade
handshake nor extra server, so it runs under gunicorn's gthread worker as it is.

Each connection SUBSCRIBEs to the desk's Redis channel (service_desk.events.channel()), so an event
published by any web process or job worker reaches every console, never through process memory.
It forwards only what the agent may see (the access rule of service_desk.access: events of their
team or of no team; "agent" events of their own team), as `event: desk` with the event's JSON.
Events carry ids, not content: the page re-fetches the list and the open conversation from the
database, which stays the truth. A comment line every 15 s keeps proxies from closing an idle
stream and finds a gone browser (the write fails; the generator closes and unsubscribes).

Sizing: each open console tab holds one server thread for as long as it is open (and no database
connection: the session is released before streaming starts). Run gunicorn with enough
`--threads` for the agents' tabs plus ordinary requests (e.g. `-k gthread --threads 32`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, g, jsonify
from redis import Redis

from members.staff import AGENT
from service_desk import access, events
from service_desk.exceptions import NotAnAgent
from wx_service.edges.console import sse
from wx_service.edges.console.auth import roles
from wx_service.ground.extensions import db, redis

log = logging.getLogger(__name__)

bp = Blueprint("console_desk_stream", __name__)

HEARTBEAT_SECONDS = 15.0


def visible(event: dict, team_id: int) -> bool:
    """The desk's access rule applied to an event: what the agent's team may see."""
    team = event.get("team")
    if event.get("kind") == "agent":
        return team == team_id
    if "from_team" in event and event["from_team"] == team_id:
        return True  # it left this team (a transfer): its pages drop it
    return team is None or team == team_id


def stream_events(client: Redis, channel: str, team_id: int, agent_id: int,
                  heartbeat: float | None = None) -> Iterator[str]:
    """The desk's events the agent's team may see, relayed as `event: desk` (see sse.relay)."""
    return sse.relay(client, channel, "desk", {"agent": agent_id, "team": team_id},
                     lambda event: visible(event, team_id), lambda: heartbeat or HEARTBEAT_SECONDS)


@bp.get("/console/api/desk/stream")
@roles(AGENT)
def stream():
    try:
        agent = access.agent_for_staff(g.staff.id)
    except NotAnAgent as exc:
        return jsonify(error=str(exc)), 403
    team_id, agent_id = agent.team_id, agent.id
    db.session.remove()  # hold no database connection while the stream is open
    return sse.response(stream_events(redis(), events.channel(), team_id, agent_id))
