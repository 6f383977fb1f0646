"""WeChat's customer-service windows (reference §5.2), as pure rules the console shows per
conversation and the send path checks before it queues anything.

A message from the shopper opens a window of 48 hours and 5 messages; a menu click, a follow or a
QR scan opens 1 minute and 3 messages (only when no message window is open: WeChat keeps the
longer one); entering the mini-program's customer-service session opens 1 minute and 2 messages.
WeChat alone knows the true count (other customer-service sends, such as the late replies of the
webhook, spend the same budget), so `remaining` is what the desk has spent of it, and WeChat's own
45015/45047 on a send is still shown on that message.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MESSAGE = ("message", timedelta(hours=48), 5)
EVENT = ("event", timedelta(minutes=1), 3)
MP_SESSION = ("mp_session", timedelta(minutes=1), 2)

# Events that open the short window (reference §5.2: only these menu types count).
WINDOW_EVENTS = {"click": EVENT, "scancode_push": EVENT, "scancode_waitmsg": EVENT, "subscribe": EVENT,
                 "subscribe_scan": EVENT, "scan": EVENT, "user_enter_tempsession": MP_SESSION}


@dataclass(frozen=True)
class Window:
    """Whether a customer-service message can go to the shopper now, and why not."""

    open: bool
    kind: str  # message, event, mp_session, or "" when none was ever opened
    remaining: int  # messages left in the window (0 when shut)
    closes_at: datetime | None
    reason: str  # for the agent, in the console's words

    def as_dict(self) -> dict[str, object]:
        return {"open": self.open, "kind": self.kind, "remaining": self.remaining,
                "closes_at": self.closes_at.isoformat() if self.closes_at else None, "reason": self.reason}


def current(last_message_at: datetime | None, last_event: tuple[str, datetime] | None,
            sent_since: "SentCounter", now: datetime, *, following: bool = True) -> Window:
    """The window in force at `now`. `last_message_at` is the shopper's last message, `last_event`
    their last window-opening event (name, time), `sent_since(t)` how many customer-service
    messages the desk sent since `t`. A shopper who unfollowed gets nothing (45015)."""
    if not following:
        return Window(False, "", 0, None, "the shopper unfollowed the account: WeChat refuses every "
                                          "customer-service message (45015); send a template message")
    candidates: list[tuple[str, datetime, timedelta, int]] = []
    if last_message_at is not None:
        candidates.append((MESSAGE[0], last_message_at, MESSAGE[1], MESSAGE[2]))
    if last_event is not None and last_event[0] in WINDOW_EVENTS:
        kind, length, quota = WINDOW_EVENTS[last_event[0]]
        candidates.append((kind, last_event[1], length, quota))
    live = [c for c in candidates if c[1] + c[2] > now]
    if not live:
        if last_message_at is None:
            return Window(False, "", 0, None, "the shopper has not written to the account, so WeChat "
                                              "accepts no customer-service message (45015)")
        return Window(False, MESSAGE[0], 0, last_message_at + MESSAGE[1],
                      "more than 48 hours since the shopper's last message: WeChat refuses "
                      "customer-service messages (45015) until they write again")
    # A message window outlives any event window opened beside it, and WeChat keeps it.
    live.sort(key=lambda c: (c[0] != MESSAGE[0], -c[1].timestamp()))
    kind, opened_at, length, quota = live[0]
    left = max(0, quota - sent_since(opened_at))
    closes_at = opened_at + length
    if left == 0:
        return Window(False, kind, 0, closes_at,
                      f"the {quota} messages WeChat allows after the shopper's last "
                      f"{'message' if kind == MESSAGE[0] else 'tap'} are used up (45047); "
                      "wait for them to write again, or send a template message")
    return Window(True, kind, left, closes_at, "")


class SentCounter:
    """Counts the desk's sent messages after a time (a callable, so the rules stay pure)."""

    def __init__(self, sent_times: list[datetime]) -> None:
        self.sent_times = sent_times

    def __call__(self, since: datetime) -> int:
        return sum(1 for t in self.sent_times if t >= since)
