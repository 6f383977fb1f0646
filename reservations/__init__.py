"""Reservations: goods held for a try-on and in-store services booked ahead of a visit. Every
invariant is in the database: a hold count per variant moves by a guarded UPDATE (`held <
holdable`), a unit of a resource's capacity at a start time and a shopper's open bookings by
guarded upserts (`used < capacity`, `open_bookings < limit`), a retried tap books once (a unique
idempotency key) and a message of a kind goes once per booking (a unique (subject, kind)).
"""
