"""Reservations (issue 11, not resolved): goods held for a try-on and in-store services booked
ahead of a visit. Every invariant is in the database: a hold count per variant moves by a guarded
UPDATE (`held < holdable`), a unit of a resource's capacity at a start time by a guarded UPDATE on
its usage row (`used < capacity`), and a retried tap books once (a unique idempotency key).
"""
