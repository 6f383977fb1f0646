"""Every reservation rule, against the database: slots from hours and exception days, lead time and
horizon, store days near midnight, refusals that change nothing, the per-shopper limit, the
cut-off, the waiting list, no-shows, and goods holds (issue 11).

The clock is passed in (`now=`), so a rule is tested at the instant it matters: "now" is Monday
7 January 2030, 10:00 in the store (02:00 UTC).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from reservations import bookings, holds, setup, slots, waitlist
from reservations.exceptions import BadTime, LimitReached, NotAllowed, SoldOut, TooLate, UnknownReservation
from reservations.models import (Booking, GoodsHold, HoldableVariant, Notice, ShopperLoad, SlotUsage,
                                 WaitlistEntry)
from reservations.states import (BOOKED, CANCELLED, CHECKED_IN, CONFIRMED, EXPIRED, HELD, LAPSED, LEFT, NO_SHOW,
                                 OFFERED, REQUESTED, RESCHEDULED, TAKEN, VISITED, WAITING)
from tests.conftest import requires_postgres
from tests.integration.reservation_helpers import held, store_time, uow, used, variant
from tests.integration.reservation_helpers import service as make_service

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
MON = date(2030, 1, 7)
TUE, WED, THU, FRI, SAT, SUN = (MON + timedelta(days=n) for n in range(1, 7))
NOW = store_time(MON, "10:00")
assert NOW == datetime(2030, 1, 7, 2, 0, tzinfo=UTC)


def at(day: date, hhmm: str) -> datetime:
    return store_time(day, hhmm)


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%H:%M")


def snapshot(app) -> tuple:
    """Everything a refusal must leave as it was: units used, bookings by status, the shoppers'
    open-booking counts, the waiting list, holds, units held, and the notices queued."""
    with uow(app) as s:
        by_status = lambda model: tuple(s.execute(  # noqa: E731
            select(model.status, func.count()).group_by(model.status).order_by(model.status)).all())
        return (s.scalar(select(func.coalesce(func.sum(SlotUsage.used), 0))), by_status(Booking),
                s.scalar(select(func.coalesce(func.sum(ShopperLoad.open_bookings), 0))), by_status(WaitlistEntry),
                by_status(GoodsHold), s.scalar(select(func.coalesce(func.sum(HoldableVariant.held), 0))),
                s.scalar(select(func.count()).select_from(Notice)))


def get(app, model, ident):
    with uow(app) as s:
        found = s.get(model, ident)
        s.expunge(found)
        return found


def load(app, openid: str) -> int:
    with uow(app) as s:
        return s.scalar(select(ShopperLoad.open_bookings).where(ShopperLoad.openid == openid)) or 0


def free_at(app, service_id: int, starts_at: datetime, now: datetime = NOW) -> int | None:
    with uow(app):
        views = bookings.availability(service_id, slots.store_day(starts_at), now)
    return next((v.free for v in views if v.starts_at == starts_at), None)


def book(app, service_id: int, starts_at: datetime, openid: str, key: str | None = None, now: datetime = NOW,
         **kwargs) -> Booking:
    with uow(app) as s:
        made = bookings.book(service_id, starts_at, openid, key or f"{openid}-{starts_at.isoformat()}", now=now,
                             **kwargs)
        s.expunge(made)
        return made


@pytest.fixture
def settings_with(monkeypatch, wx):
    def apply(**values) -> None:
        monkeypatch.setattr(wx, "settings", replace(wx.settings, **values))
    return apply


# --- slots ----------------------------------------------------------------------------------------


def test_slots_follow_the_week_the_store_holiday_the_late_night_and_the_counters_own_day(app):
    """Weekday hours give the grid; a store-wide "*" day closes or extends every counter; a
    counter's own exception on the same day wins over the store's."""
    with uow(app):
        beauty, _ = setup.define_service("beauty", "美容咨询", "LANCOME", 45, 15, lead=60, horizon=30)
        setup.define_resource("beauty", "美容顾问 小美", "staff", 2)
        dior, _ = setup.define_service("dior-makeup", "试妆", "DIOR", 45, 15, lead=60, horizon=30)
        setup.define_resource("dior-makeup", "1号化妆台", "station", 1)
        beauty, dior = beauty.id, dior.id
        for counter in ("LANCOME", "DIOR"):
            setup.set_hours(counter, "Mon-Fri 10:00-22:00; Sat 10:00-18:00")  # Sundays closed
        setup.set_exception("*", WED, "closed", "元旦")
        setup.set_exception("*", FRI, "10:00-23:30", "周五夜场")
        setup.set_exception("*", FRI + timedelta(days=7), "10:00-23:30", "周五夜场")
        setup.set_exception("LANCOME", FRI + timedelta(days=7), "12:00-20:00", "盘点")

    def starts(service_id: int, day: date) -> list[str]:
        with uow(app):
            return [local(v.starts_at) for v in bookings.availability(service_id, day, NOW)]

    hourly = lambda first, last: [f"{h:02d}:00" for h in range(first, last + 1)]  # noqa: E731
    assert starts(beauty, TUE) == hourly(10, 21)  # 45 + 15 minutes: every hour; 21:00 ends at 21:45
    assert starts(beauty, MON) == hourly(11, 21)  # today: nothing inside the hour's lead time
    assert starts(beauty, SAT) == hourly(10, 17)
    assert starts(beauty, SUN) == []
    assert starts(beauty, WED) == [] and starts(dior, WED) == []  # the store's holiday closes every counter
    assert starts(beauty, FRI) == hourly(10, 22) == starts(dior, FRI)  # late night: 22:00 ends 22:45
    assert starts(beauty, FRI + timedelta(days=7)) == hourly(12, 19)  # the counter's own day wins
    assert starts(dior, FRI + timedelta(days=7)) == hourly(10, 22)
    with uow(app):
        tuesday = bookings.availability(beauty, TUE, NOW)
    assert {(v.capacity, v.free, v.waiting) for v in tuesday} == {(2, 2, 0)}
    assert all(v.ends_at - v.starts_at == timedelta(minutes=45) for v in tuesday)
    with uow(app), pytest.raises(BadTime, match="closed on 2030-01-09 \\(元旦\\)"):
        bookings.book(beauty, at(WED, "12:00"), "oA", "k", now=NOW)
    book(app, beauty, at(FRI, "22:00"), "oA")  # the late night's extra hour can be booked
    assert free_at(app, beauty, at(FRI, "22:00")) == 1


def test_the_horizon_ends_with_the_store_day_horizon_days_ahead(app):
    service, _ = make_service(app, capacity=1, duration=30, buffer=0, lead=60, horizon=30)
    last_day = MON + timedelta(days=30)
    with uow(app):
        assert local(bookings.availability(service, last_day, NOW)[-1].starts_at) == "23:30"
        assert bookings.availability(service, last_day + timedelta(days=1), NOW) == []
    assert book(app, service, at(last_day, "23:30"), "oA").status == BOOKED  # its very last start
    with uow(app), pytest.raises(BadTime, match="at most 30 days ahead"):
        bookings.book(service, at(last_day + timedelta(days=1), "00:00"), "oA", "k-next", now=NOW)


# --- time -----------------------------------------------------------------------------------------


def test_a_booking_made_at_a_plus_eight_time_reads_back_as_the_same_instant(app):
    """No daylight saving in Shanghai, but UTC storage must still round-trip, on SQLite (which
    keeps no zone) as on Postgres."""
    service, _ = make_service(app, capacity=2, duration=45, buffer=15)
    asked = datetime(2030, 1, 8, 14, 0, tzinfo=timezone(timedelta(hours=8)))  # as the mini-program sends it
    made = book(app, service, asked, "oA")
    again = get(app, Booking, made.id)
    assert again.starts_at == asked and again.starts_at.utcoffset() == timedelta(0)
    assert again.starts_at == datetime(2030, 1, 8, 6, 0, tzinfo=UTC)
    assert again.starts_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == "2030-01-08 14:00"
    assert again.ends_at.astimezone(SHANGHAI).strftime("%H:%M") == "14:45"
    with uow(app) as s:  # the stored instant is found by the same instant written in any zone
        assert s.scalar(select(Booking.id).where(Booking.starts_at == asked)) == made.id
        assert s.scalar(select(Booking.id).where(Booking.starts_at == asked.astimezone(UTC))) == made.id
    assert free_at(app, service, asked) == 1
    assert book(app, service, asked, "oA", key=f"oA-{asked.isoformat()}").id == made.id  # the retry finds it


def test_a_booking_near_midnight_lands_on_its_store_day_in_the_slots_and_at_check_in(app):
    service, _ = make_service(app, capacity=1, duration=30, buffer=0)  # the counter never closes
    late = at(TUE, "23:30")  # 15:30 UTC on Tuesday
    early = at(WED, "00:30")  # 16:30 UTC, still Tuesday in UTC
    assert (late.astimezone(UTC).date(), early.astimezone(UTC).date()) == (TUE, TUE)
    late_id, early_id = book(app, service, late, "oA").id, book(app, service, early, "oB").id
    with uow(app):
        tuesday = bookings.availability(service, TUE, NOW)
        wednesday = bookings.availability(service, WED, NOW)
    assert {slots.store_day(v.starts_at) for v in tuesday} == {TUE}
    assert [local(v.starts_at) for v in tuesday][-1] == "23:30" and tuesday[-1].free == 0
    assert [local(v.starts_at) for v in wednesday][:2] == ["00:00", "00:30"]
    assert (wednesday[0].free, wednesday[1].free) == (1, 0)
    with uow(app), pytest.raises(NotAllowed, match="for 2030-01-09, not today"):
        bookings.check_in(early_id, now=at(TUE, "23:50"))  # the shopper is early by a day
    with uow(app), pytest.raises(NotAllowed, match="for 2030-01-08, not today"):
        bookings.check_in(late_id, now=at(WED, "00:05"))  # after midnight in the store it is tomorrow
    with uow(app):
        assert bookings.check_in(late_id, now=at(TUE, "23:35")).status == CHECKED_IN
        assert bookings.check_in(early_id, now=at(WED, "00:10")).status == CHECKED_IN


# --- bad input ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    service: int
    resource: int
    other_resource: int
    own_booking: int
    other_booking: int


@pytest.fixture
def world(app) -> World:
    """LANCOME's service open 10:00-22:00 (a slot every 40 minutes), closed on Wednesday; a DIOR
    service; oA and oOther each booked on Tuesday at 12:00."""
    service, resource = make_service(app, capacity=3, counter="LANCOME", code="facial", duration=30, buffer=10,
                                     hours=False)
    _, other_resource = make_service(app, counter="DIOR", code="dior", hours=False)
    with uow(app):
        setup.set_hours("LANCOME", "daily 10:00-22:00")
        setup.set_exception("*", WED, "closed", "元旦")
    own = book(app, service, at(TUE, "12:00"), "oA").id
    other = book(app, service, at(TUE, "12:00"), "oOther").id
    return World(service, resource, other_resource, own, other)


NAIVE = datetime(2030, 1, 8, 12, 0)
BAD_INPUT = {
    "in the past": (lambda w: bookings.book(w.service, at(MON, "09:20"), "oA", "k", now=NOW),
                    BadTime, "that time has passed"),
    "inside the lead time": (lambda w: bookings.book(w.service, at(MON, "10:40"), "oA", "k", now=NOW),
                             BadTime, "at least 60 minutes ahead"),
    "beyond the horizon": (lambda w: bookings.book(w.service, at(MON + timedelta(days=31), "10:00"), "oA", "k", now=NOW),
                           BadTime, "at most 30 days ahead"),
    "before opening": (lambda w: bookings.book(w.service, at(TUE, "09:20"), "oA", "k", now=NOW),
                       BadTime, "09:20 is not a start time .* \\(open 10:00-22:00"),
    "at closing": (lambda w: bookings.book(w.service, at(TUE, "22:00"), "oA", "k", now=NOW),
                   BadTime, "22:00 is not a start time"),
    "off the grid": (lambda w: bookings.book(w.service, at(TUE, "10:20"), "oA", "k", now=NOW),
                     BadTime, "every 40 minutes"),
    "a wrong zone offset": (  # 12:00 written +05:00 is 15:00 in the store: not a start time
        lambda w: bookings.book(w.service, datetime(2030, 1, 8, 12, 0, tzinfo=timezone(timedelta(hours=5))),
                                "oA", "k", now=NOW), BadTime, "15:00 is not a start time"),
    "a closed day": (lambda w: bookings.book(w.service, at(WED, "12:00"), "oA", "k", now=NOW),
                     BadTime, "closed on 2030-01-09"),
    "a time without its zone": (lambda w: bookings.book(w.service, NAIVE, "oA", "k", now=NOW),
                                BadTime, "zone offset"),
    "an unknown resource": (lambda w: bookings.book(w.service, at(TUE, "14:00"), "oA", "k", resource_id=999999,
                                                    now=NOW), UnknownReservation, "no resource 999999"),
    "another service's resource": (lambda w: bookings.book(w.service, at(TUE, "14:00"), "oA", "k",
                                                           resource_id=w.other_resource, now=NOW),
                                   UnknownReservation, "no resource"),
    "an unknown service": (lambda w: bookings.book(999999, at(TUE, "14:00"), "oA", "k", now=NOW),
                           UnknownReservation, "no service 999999"),
    "cancelling another shopper's booking": (lambda w: bookings.cancel(w.other_booking, "x", openid="oA", now=NOW),
                                             UnknownReservation, "no booking"),
    "moving another shopper's booking": (lambda w: bookings.reschedule(w.other_booking, at(TUE, "14:00"), "k",
                                                                       openid="oA", now=NOW),
                                         UnknownReservation, "no booking"),
    "moving one's own to a bad time": (lambda w: bookings.reschedule(w.own_booking, at(TUE, "10:20"), "k",
                                                                     openid="oA", now=NOW), BadTime, "not a start"),
    "moving with a key already used for another booking": (
        lambda w: bookings.reschedule(w.own_booking, at(TUE, "14:00"), f"oA-{at(TUE, '12:00').isoformat()}",
                                      openid="oA", now=NOW), NotAllowed, "already used for another booking"),
    "declining a booking that needs no confirmation": (
        lambda w: bookings.decline(w.own_booking, "", now=NOW), NotAllowed, "only a booking waiting"),
    "joining the waiting list off the grid": (
        lambda w: bookings.join_waitlist(w.service, at(TUE, "12:10"), "oA", now=NOW), BadTime, "not a start"),
    "checking in at another counter": (lambda w: bookings.check_in(w.own_booking, counters=frozenset({"DIOR"}),
                                                                   now=at(TUE, "11:50")),
                                       UnknownReservation, "at your counters"),
    "checking in on another day": (lambda w: bookings.check_in(w.own_booking, now=NOW), NotAllowed, "not today"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_with_its_reason_and_changes_nothing(app, world, case):
    attempt, error, words = BAD_INPUT[case]
    before = snapshot(app)
    with uow(app), pytest.raises(error, match=words):
        attempt(world)
    assert snapshot(app) == before
    assert get(app, Booking, world.own_booking).status == BOOKED


# --- the per-shopper limit ------------------------------------------------------------------------


def test_a_shopper_books_up_to_the_limit_moves_one_at_the_limit_and_a_cancel_frees_a_place(app, settings_with):
    settings_with(RESERVATION_MAX_OPEN=3)
    service, _ = make_service(app, capacity=5, duration=30, buffer=0)
    first, second, _third = (book(app, service, at(TUE, t), "oA").id for t in ("12:00", "13:00", "14:00"))
    assert load(app, "oA") == 3
    before = snapshot(app)
    with uow(app), pytest.raises(LimitReached, match="already have 3 open bookings"):
        bookings.book(service, at(TUE, "15:00"), "oA", "k-4", now=NOW)
    assert snapshot(app) == before
    with uow(app):
        moved = bookings.reschedule(first, at(TUE, "16:00"), "k-move", openid="oA", now=NOW)
    assert (moved.status, moved.previous_id, load(app, "oA")) == (BOOKED, first, 3)
    assert get(app, Booking, first).status == RESCHEDULED
    assert free_at(app, service, at(TUE, "12:00")) == 5  # the old time is free again
    with uow(app):
        bookings.cancel(second, "有事", openid="oA", now=NOW)
    assert load(app, "oA") == 2
    assert book(app, service, at(TUE, "15:00"), "oA").status == BOOKED
    assert load(app, "oA") == 3
    assert book(app, service, at(TUE, "15:00"), "oB").status == BOOKED  # the limit is per shopper
    with uow(app):
        assert bookings.check_in(moved.id, now=at(TUE, "15:55")).status == CHECKED_IN
    assert load(app, "oA") == 2  # a visit that happened is no longer open


@requires_postgres
def test_twenty_parallel_taps_by_one_shopper_for_different_slots_book_exactly_the_limit(app, settings_with):
    settings_with(RESERVATION_MAX_OPEN=3)
    service, resource = make_service(app, capacity=5, duration=30, buffer=0)
    start = threading.Barrier(20)

    def tap(n: int) -> str:
        start.wait()
        try:
            with uow(app):
                bookings.book(service, at(TUE, "10:00") + timedelta(minutes=30 * n), "oEager", f"tap-{n}", now=NOW)
            return "booked"
        except LimitReached:
            return "limit"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(tap, range(20)))
    assert (outcomes.count("booked"), outcomes.count("limit")) == (3, 17)
    assert load(app, "oEager") == 3 and used(app, resource) == 3
    with uow(app) as s:
        assert s.scalar(select(func.count()).select_from(Booking)) == 3


# --- the cut-off ----------------------------------------------------------------------------------


def test_inside_the_cut_off_the_shopper_cannot_cancel_or_move_but_the_counter_can(app, settings_with):
    settings_with(RESERVATION_CUTOFF_MINUTES=120)
    service, _ = make_service(app, capacity=2, duration=30, buffer=0, lead=30)
    one, two = book(app, service, at(TUE, "12:00"), "oA").id, book(app, service, at(TUE, "12:00"), "oB").id
    before = snapshot(app)
    for when in (at(TUE, "10:00"), at(TUE, "11:30")):  # exactly at the cut-off, and inside it
        with uow(app), pytest.raises(TooLate, match="up to 120 minutes before"):
            bookings.cancel(one, "堵车", openid="oA", now=when)
        with uow(app), pytest.raises(TooLate, match="up to 120 minutes before"):
            bookings.reschedule(one, at(TUE, "15:00"), "k-move", openid="oA", now=when)
    assert snapshot(app) == before
    with uow(app):  # the counter, on the phone with them
        moved = bookings.reschedule(one, at(TUE, "15:00"), "k-counter", now=at(TUE, "11:30"))
        cancelled = bookings.cancel(two, "顾客来电取消", now=at(TUE, "11:45"))
    assert (moved.status, cancelled.status, cancelled.cancel_reason) == (BOOKED, CANCELLED, "顾客来电取消")
    with uow(app):  # a minute before the cut-off the shopper still can
        assert bookings.cancel(moved.id, "改天", openid="oA", now=at(TUE, "12:59")).status == CANCELLED


# --- the waiting list -----------------------------------------------------------------------------


def test_only_a_full_slot_can_be_joined_and_joining_twice_is_one_place(app):
    service, _ = make_service(app, capacity=1, duration=30, buffer=0)
    slot = at(TUE, "12:00")
    with uow(app), pytest.raises(NotAllowed, match="still has room"):
        bookings.join_waitlist(service, slot, "oB", now=NOW)
    book(app, service, slot, "oA")
    with uow(app):
        first = bookings.join_waitlist(service, slot, "oB", now=NOW).id
        assert bookings.join_waitlist(service, slot, "oB", now=NOW).id == first
        bookings.join_waitlist(service, slot, "oC", now=NOW)
    with uow(app):
        view = next(v for v in bookings.availability(service, TUE, NOW) if v.starts_at == slot)
        assert (view.free, view.waiting) == (0, 2)
        assert [waitlist.position(e) for e in waitlist_of(slot)] == [1, 2]


def waitlist_of(slot: datetime) -> list[WaitlistEntry]:
    from wx_service.ground.extensions import db

    return list(db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.starts_at == slot)
                                   .order_by(WaitlistEntry.id)))


def entries(app, slot: datetime) -> list[tuple[str, str]]:
    with uow(app):
        return [(e.openid, e.status) for e in waitlist_of(slot)]


def full_slot_with_two_waiting(app) -> tuple[int, int, datetime, list[int]]:
    service, _ = make_service(app, capacity=1, duration=30, buffer=0)
    slot = at(TUE, "12:00")
    booking = book(app, service, slot, "oA").id
    with uow(app):
        waiting = [bookings.join_waitlist(service, slot, who, now=NOW).id for who in ("oB", "oC")]
    return service, booking, slot, waiting


def test_a_cancel_offers_the_unit_to_the_first_waiting_shopper_who_books_it(app, settings_with):
    settings_with(RESERVATION_OFFER_MINUTES=15)
    service, booking, slot, (b_entry, _c) = full_slot_with_two_waiting(app)
    with uow(app):
        bookings.cancel(booking, "临时有事", openid="oA", now=NOW)
    assert entries(app, slot) == [("oB", OFFERED), ("oC", WAITING)]
    offer = get(app, WaitlistEntry, b_entry)
    assert offer.offered_until == NOW + timedelta(minutes=15)
    assert free_at(app, service, slot) == 0  # kept for oB: a passer-by cannot take it
    with uow(app), pytest.raises(SoldOut):
        bookings.book(service, slot, "oD", "k-d", now=NOW)
    with uow(app) as s:
        assert s.scalar(select(Notice.kind).where(Notice.subject == waitlist.subject(b_entry))) == "offer"
    with uow(app), pytest.raises(UnknownReservation):
        bookings.take_offer(b_entry, "oC", "k-c", now=NOW)  # not oC's offer
    with uow(app):
        taken = bookings.take_offer(b_entry, "oB", "k-b", now=NOW + timedelta(minutes=5))
        assert bookings.take_offer(b_entry, "oB", "k-b", now=NOW + timedelta(minutes=6)).id == taken.id  # retried tap
    assert (taken.status, taken.channel, taken.starts_at) == (BOOKED, "waitlist", slot)
    assert entries(app, slot) == [("oB", TAKEN), ("oC", WAITING)]
    assert free_at(app, service, slot) == 0 and load(app, "oB") == 1
    with uow(app) as s:
        assert s.scalar(select(func.sum(SlotUsage.used))) == 1  # one unit, never two


def test_an_offer_not_taken_in_time_passes_to_the_next_and_then_back_to_the_slot(app, settings_with):
    settings_with(RESERVATION_OFFER_MINUTES=15)
    service, booking, slot, (b_entry, c_entry) = full_slot_with_two_waiting(app)
    with uow(app):
        bookings.cancel(booking, "x", openid="oA", now=NOW)
    with uow(app):
        assert waitlist.lapse_due(NOW + timedelta(minutes=14)) == 0
    with uow(app), pytest.raises(NotAllowed, match="no longer open"):
        bookings.take_offer(b_entry, "oB", "k-b", now=NOW + timedelta(minutes=15))  # too late, sweep or not
    with uow(app):
        assert waitlist.lapse_due(NOW + timedelta(minutes=16)) == 1
        assert waitlist.lapse_due(NOW + timedelta(minutes=16)) == 0  # a second sweep: nothing more
    assert entries(app, slot) == [("oB", LAPSED), ("oC", OFFERED)]
    assert get(app, WaitlistEntry, c_entry).offered_until == NOW + timedelta(minutes=31)
    assert free_at(app, service, slot) == 0
    with uow(app):
        assert waitlist.lapse_due(NOW + timedelta(minutes=32)) == 1
    assert entries(app, slot) == [("oB", LAPSED), ("oC", LAPSED)]
    assert free_at(app, service, slot) == 1  # nobody left waiting: back to the slot
    assert book(app, service, slot, "oD").status == BOOKED


def test_leaving_while_offered_passes_the_offer_on(app):
    service, booking, slot, (b_entry, c_entry) = full_slot_with_two_waiting(app)
    with uow(app):
        bookings.cancel(booking, "x", now=NOW)  # the counter cancels
    with uow(app):
        assert waitlist.leave(b_entry, "oB", now=NOW).status == LEFT
    assert entries(app, slot) == [("oB", LEFT), ("oC", OFFERED)]
    with uow(app), pytest.raises(UnknownReservation):
        waitlist.leave(c_entry, "oB", now=NOW)  # not oB's place
    with uow(app):
        waitlist.leave(c_entry, "oC", now=NOW)
    assert free_at(app, service, slot) == 1


# --- no-shows -------------------------------------------------------------------------------------


def test_a_booking_not_checked_in_by_start_plus_grace_is_a_no_show(app, settings_with):
    settings_with(RESERVATION_NOSHOW_GRACE_MINUTES=15)
    service, _ = make_service(app, capacity=2, duration=30, buffer=0)
    absent = book(app, service, at(TUE, "12:00"), "oA").id
    present = book(app, service, at(TUE, "12:00"), "oB").id
    with uow(app):
        bookings.check_in(present, now=at(TUE, "11:55"))
        assert bookings.mark_no_shows(at(TUE, "12:14")) == 0
    with uow(app):
        assert bookings.mark_no_shows(at(TUE, "12:15")) == 1
        assert bookings.mark_no_shows(at(TUE, "12:16")) == 0
    assert (get(app, Booking, absent).status, get(app, Booking, present).status) == (NO_SHOW, CHECKED_IN)
    assert load(app, "oA") == 0
    with uow(app):
        assert bookings.recent_no_shows("oA", at(TUE, "13:00")) == 1
        assert bookings.recent_no_shows("oA", at(TUE, "12:00") + timedelta(days=91)) == 0  # 90 days on


def test_after_two_no_shows_a_booking_waits_for_the_counter_which_confirms_or_declines(app, settings_with):
    settings_with(RESERVATION_NOSHOW_LIMIT=2, RESERVATION_NOSHOW_DAYS=90, RESERVATION_NOSHOW_GRACE_MINUTES=15)
    service, _ = make_service(app, capacity=2, duration=30, buffer=0, counter="LANCOME")
    for t in ("12:00", "14:00"):
        book(app, service, at(TUE, t), "oA")
    with uow(app):
        assert bookings.mark_no_shows(at(TUE, "15:00")) == 2
    later = at(TUE, "15:00")
    asked = [book(app, service, at(THU, t), "oA", now=later) for t in ("16:00", "13:00", "14:00")]
    assert {b.status for b in asked} == {REQUESTED}
    assert free_at(app, service, at(THU, "16:00"), later) == 1  # the unit is taken meanwhile
    with uow(app) as s:
        assert s.scalar(select(Notice.kind).where(Notice.subject == bookings.subject(asked[0].id))) == "requested"
    with uow(app), pytest.raises(UnknownReservation):
        bookings.confirm(asked[0].id, counters=frozenset({"DIOR"}), now=later)  # not that counter's
    with uow(app), pytest.raises(NotAllowed, match="waits for the counter"):
        bookings.check_in(asked[0].id, now=at(THU, "11:55"))
    with uow(app):
        assert bookings.confirm(asked[0].id, counters=frozenset({"LANCOME"}), now=later).status == BOOKED
        declined = bookings.decline(asked[1].id, "", counters=frozenset({"LANCOME"}), now=later)
    assert declined.status == CANCELLED and "could not confirm" in declined.cancel_reason
    assert free_at(app, service, at(THU, "13:00"), later) == 2
    with uow(app), pytest.raises(NotAllowed):
        bookings.confirm(asked[0].id, now=later)  # already booked
    with uow(app):  # nobody confirmed the third before its start: cancelled, not a no-show
        assert bookings.mark_no_shows(at(THU, "14:00")) == 0
    third = get(app, Booking, asked[2].id)
    assert third.status == CANCELLED and "not confirmed" in third.cancel_reason
    with uow(app) as s:
        kinds = set(s.scalars(select(Notice.kind).where(Notice.subject == bookings.subject(third.id))))
    assert kinds == {"requested", "cancelled"}  # the shopper is told
    assert get(app, Booking, asked[0].id).status == BOOKED  # the confirmed one is untouched until its grace
    # 90 days after those no-shows, a booking needs nobody's confirmation again.
    much_later = at(TUE, "15:00") + timedelta(days=91)
    assert book(app, service, much_later.replace(minute=0) + timedelta(hours=5), "oA", now=much_later).status == BOOKED


# --- goods holds ----------------------------------------------------------------------------------


def test_a_hold_lasts_to_the_end_of_the_chosen_store_day_then_the_sweep_frees_it(app):
    item = variant(app, holdable=2)
    with uow(app):
        made = holds.hold(item, "oA", "k-1", TUE, now=NOW)
    assert made.status == HELD and made.expires_at == slots.store_midnight(WED)  # Tuesday 23:59:59.999 in the store
    assert made.expires_at == datetime(2030, 1, 8, 16, 0, tzinfo=UTC)
    with uow(app):
        assert holds.expire_due(made.expires_at - timedelta(seconds=1)) == 0
    with uow(app):
        assert holds.expire_due(made.expires_at) == 1
        assert holds.expire_due(made.expires_at + timedelta(minutes=1)) == 0
    assert get(app, GoodsHold, made.id).status == EXPIRED and held(app, item) == 0
    with uow(app), pytest.raises(BadTime, match="has passed"):
        holds.hold(item, "oA", "k-2", MON - timedelta(days=1), now=NOW)
    with uow(app), pytest.raises(BadTime, match="at most 14 days ahead"):
        holds.hold(item, "oA", "k-3", MON + timedelta(days=15), now=NOW)
    with uow(app), pytest.raises(UnknownReservation):
        holds.hold(999999, "oA", "k-4", TUE, now=NOW)
    assert held(app, item) == 0


def test_the_counter_may_confirm_holds_at_once_by_setting(app, settings_with):
    settings_with(RESERVATION_AUTO_CONFIRM_HOLDS=True)
    item = variant(app, holdable=2)
    with uow(app):
        made = holds.hold(item, "oA", "k-1", TUE, now=NOW)
    assert made.status == CONFIRMED
    with uow(app) as s:
        assert s.scalar(select(Notice.kind).where(Notice.subject == holds.subject(made.id))) == "confirmed"


def test_a_hold_is_visited_at_its_counter_and_cancelled_only_by_its_shopper(app):
    item = variant(app, holdable=3, counter="LANCOME")
    with uow(app):
        one = holds.hold(item, "oA", "k-1", TUE, now=NOW).id
        two = holds.hold(item, "oB", "k-2", TUE, now=NOW).id
    before = snapshot(app)
    with uow(app), pytest.raises(UnknownReservation):
        holds.visit(one, counters=frozenset({"DIOR"}), now=at(TUE, "15:00"))
    with uow(app), pytest.raises(UnknownReservation):
        holds.move(two, CANCELLED, openid="oA", now=NOW)  # oB's hold
    assert snapshot(app) == before
    with uow(app):
        visited = holds.visit(one, counters=frozenset({"LANCOME"}), now=at(TUE, "15:00"))
        assert holds.visit(one, counters=frozenset({"LANCOME"}), now=at(TUE, "15:01")).visited_at == visited.visited_at
        cancelled = holds.move(two, CANCELLED, openid="oB", now=NOW)
    assert (visited.status, visited.visited_at, cancelled.status) == (VISITED, at(TUE, "15:00"), CANCELLED)
    assert held(app, item) == 0
    with uow(app), pytest.raises(NotAllowed):
        holds.visit(two, now=at(TUE, "15:00"))  # cancelled is final


@requires_postgres
def test_two_sweeps_at_once_expire_each_hold_exactly_once(app):
    item = variant(app, holdable=20)
    with uow(app):
        for n in range(10):
            holds.hold(item, f"oShopper{n}", f"k-{n}", TUE, now=NOW)  # due at Tuesday's end
        for n in range(5):
            holds.hold(item, f"oLater{n}", f"k-later-{n}", THU, now=NOW)
    assert held(app, item) == 15
    start = threading.Barrier(2)

    def sweep(_n: int) -> int:
        start.wait()
        with uow(app):
            return holds.expire_due(at(WED, "09:00"))

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(sweep, range(2)))
    assert sum(counts) == 10
    assert held(app, item) == 5  # ten units back, not twenty
    with uow(app) as s:
        assert dict(s.execute(select(GoodsHold.status, func.count()).group_by(GoodsHold.status)).all()) == {
            EXPIRED: 10, HELD: 5}
