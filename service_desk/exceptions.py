"""What the desk refuses, each with a message an agent can read as it is."""
from __future__ import annotations


class DeskError(Exception):
    """Base of the desk's refusals."""


class UnknownConversation(DeskError):
    pass


class AlreadyTaken(DeskError):
    """Another agent owns the conversation now (or it was resolved): nothing changed."""


class AtCapacity(DeskError):
    """The agent already holds as many conversations as their cap allows."""


class NotAnAgent(DeskError):
    """The signed-in staff member has no agent row: the desk is not theirs to use."""


class WindowClosed(DeskError):
    """WeChat would refuse a customer-service message now (45015/45047): the reason, and
    whether a template message can go instead."""

    def __init__(self, reason: str, fallback_available: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fallback_available = fallback_available


class BadMessage(DeskError):
    """An empty or oversized message, or a note with nothing in it."""


class NotYours(DeskError):
    """The conversation is assigned to another agent: only its owner answers, transfers or resolves."""


class NoPhone(DeskError):
    """The shopper is no member, or the member gave no phone number: there is nothing to reveal."""


class BadEntry(DeskError):
    """A FAQ entry, canned reply or search that staff typed and the desk cannot use, with why."""


class UnknownEntry(DeskError):
    """No such FAQ entry or canned reply, or one that is another agent's own (answered alike)."""
