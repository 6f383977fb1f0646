"""The allowed moves of a goods hold and of a booking: one table each, applied as a
compare-and-swap on the status (`UPDATE ... WHERE status = <from>`)."""
from __future__ import annotations

# Goods holds: a shopper holds a variant for a visit day; the counter confirms it (or the
# counter confirms automatically); it is visited, or it ends (cancelled, expired).
HELD, CONFIRMED, VISITED, CANCELLED, EXPIRED = "held", "confirmed", "visited", "cancelled", "expired"
HOLD_MOVES: frozenset[tuple[str, str]] = frozenset({
    (HELD, CONFIRMED), (HELD, CANCELLED), (HELD, EXPIRED),
    (CONFIRMED, VISITED), (CONFIRMED, CANCELLED), (CONFIRMED, EXPIRED),
})
# A hold in these states keeps a unit of its variant; leaving them gives it back.
HOLDING = (HELD, CONFIRMED)

# Service bookings. A shopper with too many recent no-shows books into `requested`: the unit is
# taken, and the counter confirms (booked) or declines (cancelled).
REQUESTED, BOOKED, CHECKED_IN, NO_SHOW, RESCHEDULED = "requested", "booked", "checked_in", "no_show", "rescheduled"
BOOKING_MOVES: frozenset[tuple[str, str]] = frozenset({
    (REQUESTED, BOOKED), (REQUESTED, CANCELLED), (REQUESTED, RESCHEDULED),
    (BOOKED, CHECKED_IN), (BOOKED, CANCELLED), (BOOKED, NO_SHOW), (BOOKED, RESCHEDULED),
})
# A booking in these states keeps its unit of the resource's capacity.
OCCUPYING = (REQUESTED, BOOKED, CHECKED_IN)
# ...and in these it counts towards the shopper's limit of open bookings.
OPEN = (REQUESTED, BOOKED)

# Waitlist entries: waiting -> offered (a released unit is kept for them) -> booked, or the offer
# lapses and passes on; a shopper may leave while waiting or offered.
WAITING, OFFERED, TAKEN, LAPSED, LEFT = "waiting", "offered", "booked", "lapsed", "left"
WAITLIST_MOVES: frozenset[tuple[str, str]] = frozenset({
    (WAITING, OFFERED), (WAITING, LEFT), (OFFERED, TAKEN), (OFFERED, LAPSED), (OFFERED, LEFT),
})


def allowed(moves: frozenset[tuple[str, str]], current: str, target: str) -> bool:
    return (current, target) in moves
