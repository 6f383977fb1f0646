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

import json
import logging
import time
from collections.abc import Iterator

from flask import Blueprint, Response, g, jsonify
from redis import Redis

from service_desk import access, events
from service_desk.exceptions import NotAnAgent
from wx_service.edges.console.auth import staff_required
from wx_service.ground.extensions import db, redis

log = logging.getLogger(__name__)

bp = Blueprint("console_desk_stream", __name__)

HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0  # how long one wait on the subscription blocks (bounds the heartbeat's lateness)


def visible(event: dict, team_id: int) -> bool:
    """The desk's access rule applied to an event: what the agent's team may see."""
    team = event.get("team")
    if event.get("kind") == "agent":
        return team == team_id
    if "from_team" in event and event["from_team"] == team_id:
        return True  # it left this team (a transfer): its pages drop it
    return team is None or team == team_id


def _frame(event_name: str, data: str) -> str:
    return f"event: {event_name}\ndata: {data}\n\n"


def stream_events(client: Redis, channel: str, team_id: int, agent_id: int,
                  heartbeat: float | None = None) -> Iterator[str]:
    """Subscribe first, then say `ready` (a test, or the page, knows nothing is missed from here),
    then forward visible events and heartbeats until the browser goes away. Runs after the request's
    context is gone: it is handed the Redis client and channel, and touches nothing else."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        yield "retry: 3000\n" + _frame("ready", json.dumps({"agent": agent_id, "team": team_id}))
        last_beat = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=POLL_SECONDS)
            if message is not None and message.get("type") == "message":
                raw = message["data"]
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                try:
                    event = json.loads(text)
                except ValueError:
                    continue
                if isinstance(event, dict) and visible(event, team_id):
                    yield _frame("desk", json.dumps(event, separators=(",", ":")))
            if time.monotonic() - last_beat >= (heartbeat or HEARTBEAT_SECONDS):
                last_beat = time.monotonic()
                yield f": heartbeat {int(time.time())}\n\n"
    finally:
        try:
            pubsub.unsubscribe()
            pubsub.close()
        except Exception:  # the connection may be gone already; nothing left to release
            log.debug("desk stream: closing the subscription failed", exc_info=True)


@bp.get("/console/api/desk/stream")
@staff_required
def stream():
    try:
        agent = access.agent_for_staff(g.staff.id)
    except NotAnAgent as exc:
        return jsonify(error=str(exc)), 403
    team_id, agent_id = agent.team_id, agent.id
    db.session.remove()  # hold no database connection while the stream is open
    response = Response(stream_events(redis(), events.channel(), team_id, agent_id), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response
