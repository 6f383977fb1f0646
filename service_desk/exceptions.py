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
