"""What reservations refuse, each with a message a shopper or the counter can read as it is."""
from __future__ import annotations


class ReservationError(Exception):
    """Base of the refusals."""


class SoldOut(ReservationError):
    """Nothing of this variant is left to hold, or the slot is full."""


class NotAllowed(ReservationError):
    """The move is not in the table of allowed moves from the current status."""


class UnknownReservation(ReservationError):
    """No such hold, booking, variant or resource (or not the shopper's: answered alike)."""


class BadTime(ReservationError):
    """A start time the service does not offer: past, inside the lead time, beyond the horizon,
    outside the counter's hours, not on the service's grid, or without a zone offset."""


class LimitReached(ReservationError):
    """The shopper already has as many open bookings as the store allows."""


class TooLate(ReservationError):
    """Inside the cut-off before the start: the shopper can no longer cancel or move it."""
