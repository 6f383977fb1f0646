"""The audit log over real HTTP (issue 12): the reservation console's writes each leave one entry
as the signed-in staff member (a refused request none), and /console/audit searches them and
exports them as CSV, for admins only."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from sqlalchemy import select

from members.models import AuditEntry, StaffRole
from tests.e2e.desk_helpers import sign_in
from tests.e2e.test_reservation_console import (
    X,
    book_today,
    console_as,
    hold_today,
    requested_booking,
    staff,
    two_counters,
    upload,
)
from tests.integration.members_helpers import uow


def entries(app, prefix: str = "reservation.") -> list[tuple]:
    with uow(app) as session:
        return [(e.staff_id, e.action, e.subject, e.before, e.after, e.detail)
                for e in session.scalars(select(AuditEntry).where(AuditEntry.action.startswith(prefix))
                                         .order_by(AuditEntry.id))]


def staff_id(app, username: str) -> int:
    from members.models import Staff

    with uow(app) as session:
        return session.scalar(select(Staff.id).where(Staff.username == username))


# -- the reservation console's writes ---------------------------------------------------------------

def test_each_reservation_console_write_leaves_one_entry_and_a_refused_one_none(app, base_url):
    made = two_counters(app)
    booking = book_today(app, made["sx"])
    hold = hold_today(app, made["vx"])
    waiting = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000001", "a")
    declined = requested_booking(app, made["sx"], made["rx"], "oShopperNoShows00000000002", "b")
    console = console_as(app, base_url, "staff_x")
    me = staff_id(app, "staff_x")
    base = "/console/reservations/api"

    assert console.post(f"{base}/bookings/{booking.id}/check-in").status_code == 200
    assert console.post(f"{base}/bookings/{booking.id}/check-in").status_code == 200  # a repeat: no entry
    assert console.post(f"{base}/holds/{hold.id}/visited").status_code == 200
    assert console.post(f"{base}/bookings/{waiting.id}/confirm").status_code == 200
    assert console.post(f"{base}/bookings/{declined.id}/decline", {"reason": "今日已满"}).status_code == 200
    # refused: a declined booking cannot be confirmed (409), nothing recorded
    assert console.post(f"{base}/bookings/{declined.id}/confirm").status_code == 409
    assert console.post(f"{base}/variants/{made['vx']}", {"holdable": 5}).status_code == 200
    # refused: not a quantity, nothing recorded
    assert console.post(f"{base}/variants/{made['vx']}", {"holdable": -1}).status_code in (400, 409)
    # another counter's booking: answered as none, nothing recorded
    other = book_today(app, made["sy"], openid="oShopperAtDior0000000000001", key="y-1")
    assert console.post(f"{base}/bookings/{other.id}/check-in").status_code == 404
    good = f"counter_code,brand,product,variant,holdable\n{X},兰蔻,小黑瓶,50ml,4\n"
    assert upload(console, good).status_code == 200
    assert upload(console, good).status_code == 200  # the same again: nothing changed, no entry
    assert upload(console, f"counter_code,brand,product,variant,holdable\n{X},兰蔻,x,y,-1\n").status_code == 422

    assert entries(app) == [
        (me, "reservation.check_in", f"booking:{booking.id}", {"status": "booked"}, {"status": "checked_in"}, ""),
        (me, "reservation.hold_visited", f"hold:{hold.id}", {"status": "held"}, {"status": "visited"}, ""),
        (me, "reservation.confirm", f"booking:{waiting.id}", {"status": "requested"}, {"status": "booked"}, ""),
        (me, "reservation.decline", f"booking:{declined.id}", {"status": "requested"}, {"status": "cancelled"},
         "今日已满"),
        (me, "reservation.variant_quantity", f"variant:{made['vx']}", {"holdable": 3}, {"holdable": 5},
         entries(app)[4][5]),
        (me, "reservation.variant_import", "variants:csv", None, {"created": 1, "updated": 0, "unchanged": 0},
         "goods.csv"),
    ]
    assert entries(app)[4][5].startswith(X)


def test_a_scan_checks_in_once_in_the_log(app, base_url):
    made = two_counters(app)
    booking = book_today(app, made["sx"])
    console = console_as(app, base_url, "staff_x")
    for _ in range(2):
        assert console.post("/console/reservations/api/scan", {"code": booking.visit_code}).status_code == 200
    assert [(a, s, d) for _w, a, s, _b, _af, d in entries(app)] == [
        ("reservation.check_in", f"booking:{booking.id}", "scan")]


# -- the page -------------------------------------------------------------------------------------

def seed(app) -> dict[str, int]:
    """Four entries at known times (and the staff, their roles given without the audited verb)."""
    staff(app, "boss")
    staff(app, "lin")
    ids = {"boss": staff_id(app, "boss"), "lin": staff_id(app, "lin")}
    with uow(app) as session:
        session.add_all([StaffRole(staff_id=ids["boss"], role="admin"),
                         StaffRole(staff_id=ids["lin"], role="counter", counter_code=X)])
        for at, who, action, subject, before, after, detail in [
            (datetime(2026, 3, 1, 15, 30, tzinfo=timezone.utc), ids["lin"], "points.adjust", "member:1",
             {"points_balance": 0}, {"points_balance": 50}, "=cmd|' /C calc'!A0"),
            (datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc), ids["boss"], "points.approve", "adjustment:7",
             {"status": "pending"}, {"status": "applied"}, "大额"),
            (datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc), None, "role.grant", "staff:2",
             {"roles": []}, {"roles": ["admin"]}, "cli"),
            (datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc), ids["lin"], "refund.request", "order:N1",
             None, {"amount_fen": 100}, "-1 yuan, @once"),
        ]:
            session.add(AuditEntry(at=at, staff_id=who, action=action, subject=subject, before=before, after=after,
                                   detail=detail))
    with uow(app) as session:
        ids.update({subject: id_ for id_, subject in session.execute(select(AuditEntry.id, AuditEntry.subject))})
    return ids


def shown_ids(html: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(r'<tr data-id="(\d+)">', html)]


def test_admins_search_the_log_by_staff_action_subject_and_store_days(app, base_url):
    ids = seed(app)
    console = sign_in(base_url, "boss")
    newest_first = [ids["order:N1"], ids["staff:2"], ids["adjustment:7"], ids["member:1"]]
    page = console.get("/console/audit")
    assert page.status_code == 200 and shown_ids(page.text) == newest_first
    assert "2026-03-01 23:30:00" in page.text  # store time

    def search(**params) -> list[int]:
        response = console.get("/console/audit", params=params)
        assert response.status_code == 200, response.text
        return shown_ids(response.text)

    assert search(staff="lin") == [ids["order:N1"], ids["member:1"]]
    assert search(staff="cli") == [ids["staff:2"]]
    assert search(action="points.") == [ids["adjustment:7"], ids["member:1"]]
    assert search(subject="order:") == [ids["order:N1"]]
    assert search(since="2026-03-02", until="2026-03-02") == [ids["adjustment:7"]]
    assert search(staff="lin", since="2026-03-03") == [ids["order:N1"]]
    assert search(staff="nobody") == []
    assert console.get("/console/audit", params={"since": "yesterday"}).status_code == 400
    # the export link carries the filters
    assert 'format=csv' in console.get("/console/audit", params={"staff": "lin"}).text


def test_the_csv_export_is_the_same_search_streamed_and_safe_to_open(app, base_url):
    ids = seed(app)
    console = sign_in(base_url, "boss")
    response = console.get("/console/audit", params={"format": "csv", "staff": "lin"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert rows == [
        ["id", "at (Asia/Shanghai)", "staff", "action", "subject", "before", "after", "detail"],
        [str(ids["order:N1"]), "2026-03-03 09:00:00", "lin", "refund.request", "order:N1", "",
         '{"amount_fen":100}', "'-1 yuan, @once"],
        [str(ids["member:1"]), "2026-03-01 23:30:00", "lin", "points.adjust", "member:1", '{"points_balance":0}',
         '{"points_balance":50}', "'=cmd|' /C calc'!A0"],
    ]
    everything = list(csv.reader(io.StringIO(console.get("/console/audit", params={"format": "csv"}).text)))
    assert [row[0] for row in everything[1:]] == [str(ids[k]) for k in ("order:N1", "staff:2", "adjustment:7",
                                                                          "member:1")]
    assert everything[2][2] == "cli"


def test_only_admins_open_the_log_or_its_export(app, base_url):
    seed(app)
    staff(app, "plain")
    for username in ("lin", "plain"):
        console = sign_in(base_url, username)
        for params in ({}, {"format": "csv"}):
            response = console.get("/console/audit", params=params)
            assert response.status_code == 403, (username, params)
            assert "for admins" in response.text and "order:N1" not in response.text
