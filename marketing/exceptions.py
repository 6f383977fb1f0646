"""What the content verbs refuse, each with words staff can read as they are. All are ValueErrors,
so a caller that only knows "bad input" can catch that; nothing is changed when one is raised."""
from __future__ import annotations


class ContentError(ValueError):
    """Base of the refusals."""


class InvalidContent(ContentError):
    """One or more fields are wrong; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = dict(errors)


class UnknownContent(ContentError):
    """No such store, brand, item or image."""


class NotAllowed(ContentError):
    """The move does not fit the item's publication status (publish what is already published,
    schedule into the past, or the item changed meanwhile)."""
