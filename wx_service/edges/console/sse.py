"""Server-Sent Events relayed from a Redis pub/sub channel: what every live console page (the
desk's inbox, the counter's reservation board) streams.

Subscribe first, then say `ready` (the page re-reads what it shows then, so nothing between its
load and the subscription is missed), then forward the events the page may see and a comment line
every `heartbeat` seconds, which keeps proxies from closing an idle stream and finds a gone browser
(the write fails; the generator closes and unsubscribes). It runs after the request's context is
gone: it is handed the Redis client and the channel, and touches nothing else.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flask import Response
from redis import Redis

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how long one wait on the subscription blocks (bounds the heartbeat's lateness)


def frame(event_name: str, data: str) -> str:
    return f"event: {event_name}\ndata: {data}\n\n"


def relay(client: Redis, channel: str, event_name: str, ready: Mapping[str, Any],
          wanted: Callable[[dict], bool], heartbeat: Callable[[], float]) -> Iterator[str]:
    """`ready`, then each JSON event on `channel` that `wanted` accepts (as `event_name`), then
    heartbeats, until the browser goes away. `heartbeat` is asked for the interval at every turn,
    so a changed setting reaches the streams already open."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        yield "retry: 3000\n" + frame("ready", json.dumps(dict(ready)))
        last_beat = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=POLL_SECONDS)
            if message is not None and message.get("type") == "message":
                raw = message["data"]
                try:
                    event = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
                except ValueError:
                    continue
                if isinstance(event, dict) and wanted(event):
                    yield frame(event_name, json.dumps(event, separators=(",", ":")))
            if time.monotonic() - last_beat >= heartbeat():
                last_beat = time.monotonic()
                yield f": heartbeat {int(time.time())}\n\n"
    finally:
        try:
            pubsub.unsubscribe()
            pubsub.close()
        except Exception:  # the connection may be gone already; nothing left to release
            log.debug("%s stream: closing the subscription failed", event_name, exc_info=True)


def response(events: Iterator[str]) -> Response:
    """The streaming response: never cached, never buffered by nginx."""
    answer = Response(events, mimetype="text/event-stream")
    answer.headers["Cache-Control"] = "no-cache"
    answer.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return answer
