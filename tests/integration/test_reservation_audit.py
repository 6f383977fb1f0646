"""Reservation writes record their own audit entries, in the verb (issue 12): a staff member's move
leaves one entry after its compare-and-swap succeeds, a repeat that changes nothing or a refused
move leaves none, and the same verbs run by a shopper or a sweep (no staff) leave none either."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from members.models import AuditEntry
from reservations import bookings, catalog, holds
from reservations.exceptions import NotAllowed
from reservations.states import CANCELLED, CONFIRMED
from tests.e2e.test_reservation_console import X, book_today, hold_today, requested_booking, two_counters
from tests.integration.members_helpers import make_staff
from tests.integration.reservation_helpers import on_grid, uow


def log(app) -> list[tuple]:
    with uow(app) as session:
        return [(e.staff_id, e.action, e.subject, e.before, e.after, e.detail)
                for e in session.scalars(select(AuditEntry).where(AuditEntry.action.startswith("reservation."))
                                         .order_by(AuditEntry.id))]


def test_each_staff_move_is_recorded_once_by_its_verb(app):
    made = two_counters(app)
    lin = make_staff(app, "lin")
    booking = book_today(app, made["sx"])
    waiting = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000001", "a")
    hold = hold_today(app, made["vx"])
    with uow(app):
        bookings.check_in(booking.id, staff_id=lin, detail="scan")
        bookings.check_in(booking.id, staff_id=lin, detail="scan")  # a second scan: nothing changes
        bookings.confirm(waiting.id, staff_id=lin)
        holds.visit(hold.id, staff_id=lin)
        holds.visit(hold.id, staff_id=lin)
    with pytest.raises(NotAllowed), uow(app):
        bookings.confirm(waiting.id, staff_id=lin)  # booked already: refused, nothing recorded
    assert log(app) == [
        (lin, "reservation.check_in", f"booking:{booking.id}", {"status": "booked"}, {"status": "checked_in"}, "scan"),
        (lin, "reservation.confirm", f"booking:{waiting.id}", {"status": "requested"}, {"status": "booked"}, ""),
        (lin, "reservation.hold_visited", f"hold:{hold.id}", {"status": "held"}, {"status": "visited"}, ""),
    ]


def test_a_staff_cancel_is_recorded_and_a_shoppers_or_a_sweeps_is_not(app):
    made = two_counters(app)
    lin = make_staff(app, "lin")
    by_staff = book_today(app, made["sx"], key="k-1")
    tomorrow = on_grid(app, made["sx"], hours_ahead=30)  # before the shopper's cut-off
    with uow(app):
        by_shopper = bookings.book(made["sx"], tomorrow, "oShopperTwo000000000000001", "k-2").id
    declined = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000002", "b")
    hold = hold_today(app, made["vx"])
    other_hold = hold_today(app, made["vx"], openid="oShopperTwo000000000000001", key="hold-2")
    with uow(app):
        bookings.cancel(by_staff.id, "店铺临时关闭", staff_id=lin)
        bookings.cancel(by_shopper, "有事", openid="oShopperTwo000000000000001")
        bookings.decline(declined.id, "今日已满", staff_id=lin)
        holds.move(hold.id, CONFIRMED, staff_id=lin)
        holds.move(other_hold.id, CANCELLED, openid=other_hold.openid)
    assert [(e[1], e[2], e[4], e[5]) for e in log(app)] == [
        ("reservation.cancel", f"booking:{by_staff.id}", {"status": "cancelled"}, "店铺临时关闭"),
        ("reservation.decline", f"booking:{declined.id}", {"status": "cancelled"}, "今日已满"),
        ("reservation.hold_confirm", f"hold:{hold.id}", {"status": "confirmed"}, ""),
    ]


def test_quantities_and_imports_are_recorded_when_they_change_something(app):
    made = two_counters(app)
    lin = make_staff(app, "lin")
    sheet = f"counter_code,brand,product,variant,holdable\n{X},兰蔻,小黑瓶,50ml,4\n"
    with uow(app):
        catalog.set_holdable(made["vx"], 5, staff_id=lin)
        catalog.set_holdable(made["vx"], 5, staff_id=lin)  # the same quantity: no entry
        catalog.import_variants(sheet, staff_id=lin, detail="goods.csv")
        catalog.import_variants(sheet, staff_id=lin, detail="goods.csv")  # unchanged: no entry
        catalog.import_variants(sheet.replace(",4\n", ",6\n"), cli=True)
        catalog.import_variants(sheet.replace(",4\n", ",7\n"))  # neither staff nor CLI: not a staff write
    rows = log(app)
    assert [(e[0], e[1], e[3], e[4], e[5]) for e in rows] == [
        (lin, "reservation.variant_quantity", {"holdable": 3}, {"holdable": 5}, rows[0][5]),
        (lin, "reservation.variant_import", None, {"created": 1, "updated": 0, "unchanged": 0}, "goods.csv"),
        (None, "reservation.variant_import", None, {"created": 0, "updated": 1, "unchanged": 0}, "cli"),
    ]
    assert rows[0][5].startswith(X)
