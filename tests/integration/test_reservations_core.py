"""Reservations' invariants, held by the database: holds never pass what is holdable, a slot
never passes its capacity, a retried tap reserves once, and every status change is an allowed
move that gives back what it held (issue 11's proof, for the core that exists so far)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from reservations import bookings, holds, slots
from reservations.exceptions import BadTime, NotAllowed, SoldOut, UnknownReservation
from reservations.models import Booking, GoodsHold
from reservations.states import BOOKED, CANCELLED, CONFIRMED, EXPIRED, HELD, RESCHEDULED, VISITED
from tests.conftest import requires_postgres

from tests.integration.reservation_helpers import held, on_grid, uow, used, variant
from tests.integration.reservation_helpers import service as make_service
from wx_service.ground.db import utcnow

def visit_day():
    return slots.store_day(utcnow()) + timedelta(days=2)


def later(hours: float = 24):
    return utcnow() + timedelta(hours=hours)


def test_a_hold_takes_a_unit_and_every_way_out_gives_it_back(app):
    item = variant(app, holdable=2)
    with uow(app):
        first = holds.hold(item, "oA", "k-1", visit_day(), later()).id
        second = holds.hold(item, "oB", "k-2", visit_day(), later()).id
    assert held(app, item) == 2
    with uow(app), pytest.raises(SoldOut):
        holds.hold(item, "oC", "k-3", visit_day(), later())
    with uow(app):
        holds.move(first, CONFIRMED)
        holds.move(first, VISITED)  # the shopper came: the unit is in their hands, the hold is done
        holds.move(second, CANCELLED, openid="oB")
    assert held(app, item) == 0
    with uow(app), pytest.raises(NotAllowed):
        holds.move(second, CONFIRMED)  # cancelled is final
    with uow(app), pytest.raises(UnknownReservation):
        holds.move(first, CANCELLED, openid="oSomeoneElse")  # a tampered id: as if none


def test_the_sweep_expires_holds_past_their_end_and_frees_their_units(app):
    item = variant(app, holdable=3)
    with uow(app):
        due = holds.hold(item, "oA", "k-1", visit_day(), later(1)).id
        holds.hold(item, "oB", "k-2", visit_day(), later(48))
    with uow(app):
        assert holds.expire_due(utcnow() + timedelta(hours=2)) == 1
    with uow(app) as session:
        assert session.get(GoodsHold, due).status == EXPIRED
    assert held(app, item) == 1
    with uow(app):
        assert holds.expire_due(utcnow() + timedelta(hours=2)) == 0  # once


def test_a_retried_hold_takes_one_unit(app):
    item = variant(app, holdable=5)
    with uow(app):
        ids = {holds.hold(item, "oA", "same-tap", visit_day(), later()).id for _ in range(10)}
    assert len(ids) == 1 and held(app, item) == 1


def test_a_booking_takes_a_unit_of_the_slot_and_cancel_gives_it_back(app):
    service, resource = make_service(app, capacity=2)
    at = on_grid(app, service)
    with uow(app):
        one = bookings.book(service, at, "oA", "k-1", resource_id=resource).id
        bookings.book(service, at, "oB", "k-2", resource_id=resource)
    with uow(app), pytest.raises(SoldOut):
        bookings.book(service, at, "oC", "k-3", resource_id=resource)
    with uow(app):
        cancelled = bookings.cancel(one, "改天再来", openid="oA")
    assert (cancelled.status, cancelled.cancel_reason) == (CANCELLED, "改天再来")
    assert used(app, resource) == 1
    with uow(app):
        assert bookings.book(service, at, "oC", "k-3", resource_id=resource).status == BOOKED  # the freed unit
    with uow(app), pytest.raises(BadTime):
        bookings.book(service, utcnow() - timedelta(minutes=1), "oD", "k-4", resource_id=resource)  # in the past
    with uow(app), pytest.raises(UnknownReservation):
        bookings.cancel(one, "x", openid="oSomeoneElse")


def test_a_reschedule_books_the_new_time_first_and_keeps_the_chain(app):
    service, resource = make_service(app, capacity=1)
    at, moved_to = on_grid(app, service), on_grid(app, service, hours_ahead=48)
    with uow(app):
        old = bookings.book(service, at, "oA", "k-1", resource_id=resource).id
        bookings.book(service, moved_to, "oB", "k-2", resource_id=resource)  # the new time is full
    with uow(app), pytest.raises(SoldOut):
        bookings.reschedule(old, moved_to, "k-3", openid="oA")
    with uow(app) as session:
        assert session.get(Booking, old).status == BOOKED  # the old booking stands
    free = on_grid(app, service, hours_ahead=72)
    with uow(app):
        new = bookings.reschedule(old, free, "k-4", openid="oA")
        assert new.previous_id == old
    with uow(app) as session:
        assert session.get(Booking, old).status == RESCHEDULED
    assert used(app, resource) == 2  # the new slot and the other shopper's; the old one was released


@requires_postgres
def test_five_hundred_shoppers_booking_a_slot_of_three_at_once_leave_exactly_three(app):
    service, resource = make_service(app, capacity=3)
    at = on_grid(app, service)
    start = threading.Barrier(50)

    def attempt(n: int) -> str:
        if n < 50:
            start.wait()
        try:
            with uow(app):
                bookings.book(service, at, f"oShopper{n:03d}", f"tap-{n}", resource_id=resource)
            return "booked"
        except SoldOut:
            return "full"

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(attempt, range(500)))
    assert outcomes.count("booked") == 3 and outcomes.count("full") == 497
    assert used(app, resource) == 3
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Booking)) == 3


@requires_postgres
def test_two_hundred_holds_on_five_units_at_once_leave_exactly_five(app):
    item = variant(app, holdable=5)
    start = threading.Barrier(40)

    def attempt(n: int) -> str:
        if n < 40:
            start.wait()
        try:
            with uow(app):
                holds.hold(item, f"oShopper{n:03d}", f"tap-{n}", visit_day(), later())
            return "held"
        except SoldOut:
            return "sold out"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(attempt, range(200)))
    assert outcomes.count("held") == 5 and held(app, item) == 5
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(GoodsHold).where(GoodsHold.status == HELD)) == 5


@requires_postgres
def test_one_booking_retried_ten_times_at_once_books_once(app):
    service, resource = make_service(app, capacity=5)
    at = on_grid(app, service)
    start = threading.Barrier(10)

    def attempt(_n: int) -> int:
        start.wait()
        with uow(app):
            return bookings.book(service, at, "oImpatient", "the-same-tap", resource_id=resource).id

    with ThreadPoolExecutor(10) as pool:
        ids = set(pool.map(attempt, range(10)))
    assert len(ids) == 1 and used(app, resource) == 1
