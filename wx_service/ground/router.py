"""The router: which handler answers which push.

Routes are registered explicitly, in one table (`handlers/routes.py`), by calling methods on a
Router. A decorator scattered over modules would make the routing depend on which modules happened
to be imported; one table can be read top to bottom and grepped for any key.

Matching order, most specific first:
  messages from a shopper in a customer-service conversation: the conversation handler, which
    is given the route the message would otherwise take (ctx.fallback) for when the database says
    the conversation has ended;
  events: menu key (CLICK), QR scene (subscribe via QR / SCAN), event name;
  messages: exact keyword, regex (in registration order), message type;
  then the default.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from wx_service.ground.protocol.messages import Push
from wx_service.ground.protocol.replies import Reply

Handler = Callable[["PushContext"], Optional[Reply]]


@dataclass
class PushContext:
    """What a handler gets: the push, plus what the router matched (keyword groups, scene)."""

    push: Push
    match: Optional[re.Match[str]] = None
    scene: str = ""
    # Set for the conversation handler: the handler and context the message would have had.
    fallback: Optional[tuple[Handler, "PushContext"]] = None

    @property
    def openid(self) -> str:
        return self.push.openid

    @property
    def message(self):
        return self.push.message

    @property
    def created_at(self) -> int:
        return int(self.push.fields["CreateTime"])


@dataclass(frozen=True)
class Route:
    kind: str
    key: str
    handler: Handler

    def describe(self) -> str:
        return f"{self.kind:<8} {self.key:<28} -> {self.handler.__module__}.{self.handler.__qualname__}"


class Router:
    def __init__(self) -> None:
        self._message_types: dict[str, Handler] = {}
        self._events: dict[str, Handler] = {}
        self._clicks: dict[str, Handler] = {}
        self._scene_prefixes: list[tuple[str, Handler]] = []
        self._keywords: dict[str, Handler] = {}
        self._patterns: list[tuple[re.Pattern[str], Handler]] = []
        self._default: Optional[Handler] = None
        self._conversation: Optional[Handler] = None
        self.routes: list[Route] = []

    def _add(self, table: dict[str, Handler], kind: str, key: str, handler: Handler) -> None:
        if key in table:
            raise ValueError(f"{kind} {key!r} is already routed to {table[key].__qualname__}")
        table[key] = handler
        self.routes.append(Route(kind, key, handler))

    def message(self, msg_type: str, handler: Handler) -> None:
        """Any user message of this MsgType (text, image, voice, location, ...)."""
        self._add(self._message_types, "message", msg_type.lower(), handler)

    def event(self, event: str, handler: Handler) -> None:
        """An event by name, as wechatpy names it (subscribe, unsubscribe, scan, click, ...)."""
        self._add(self._events, "event", event.lower(), handler)

    def click(self, menu_key: str, handler: Handler) -> None:
        """A CLICK menu button by its key."""
        self._add(self._clicks, "click", menu_key, handler)

    def scene(self, prefix: str, handler: Handler) -> None:
        """A parametric QR scene (follow via QR, or SCAN) whose value starts with `prefix`."""
        self._scene_prefixes.append((prefix, handler))
        self._scene_prefixes.sort(key=lambda item: -len(item[0]))
        self.routes.append(Route("scene", prefix + "*", handler))

    def keyword(self, word: str, handler: Handler) -> None:
        """A text message equal to `word` (after trimming; case-insensitive)."""
        self._add(self._keywords, "keyword", word.strip().lower(), handler)

    def regex(self, pattern: str, handler: Handler) -> None:
        """A text message matching `pattern` (re.search); the match is in ctx.match."""
        self._patterns.append((re.compile(pattern), handler))
        self.routes.append(Route("regex", pattern, handler))

    def conversation(self, handler: Handler) -> None:
        """User messages from a shopper the claim says is in a customer-service conversation (or
        when it cannot say: Redis away)."""
        if self._conversation is not None:
            raise ValueError("a conversation handler is already registered")
        self._conversation = handler
        self.routes.append(Route("convers.", "*", handler))

    def default(self, handler: Handler) -> None:
        if self._default is not None:
            raise ValueError("a default handler is already registered")
        self._default = handler
        self.routes.append(Route("default", "*", handler))

    def resolve(self, push: Push, in_conversation: bool | None = False) -> tuple[Optional[Handler], PushContext]:
        """The handler for `push`. `in_conversation` is the claim's answer (None: unknown)."""
        handler, ctx = self._resolve(push)
        if in_conversation is not False and push.is_user_message and self._conversation is not None:
            return self._conversation, PushContext(push=push, fallback=(handler, ctx) if handler else None)
        return handler, ctx

    def _resolve(self, push: Push) -> tuple[Optional[Handler], PushContext]:
        ctx = PushContext(push=push)
        message = push.message
        if push.msg_type == "event":
            event = push.event
            if event == "click":
                handler = self._clicks.get(getattr(message, "key", "") or "")
                if handler:
                    return handler, ctx
            if event in ("subscribe_scan", "scan"):
                ctx.scene = getattr(message, "scene_id", "") or ""
                for prefix, handler in self._scene_prefixes:
                    if ctx.scene.startswith(prefix):
                        return handler, ctx
            handler = self._events.get(event)
            if handler is None and event == "subscribe_scan":
                handler = self._events.get("subscribe")
            if handler:
                return handler, ctx
        else:
            if push.msg_type == "text":
                content = (getattr(message, "content", "") or "").strip()
                handler = self._keywords.get(content.lower())
                if handler:
                    return handler, ctx
                for pattern, handler in self._patterns:
                    found = pattern.search(content)
                    if found:
                        ctx.match = found
                        return handler, ctx
            handler = self._message_types.get(push.msg_type)
            if handler:
                return handler, ctx
        return self._default, ctx
