"""Setting up reservations from the command line (`flask reservations ...`) and the demo's
reservations: what an operator types, what they read back, what is refused, and that the shopper's
slots then follow it."""
from __future__ import annotations

import sys
import types
from datetime import date, timedelta

from sqlalchemy import func, select

from members import staff as staff_service
from members.models import Staff, StaffRole
from reservations import bookings, slots
from reservations.models import HoldableVariant, HoursException, OpeningHours, Resource, Service
from tests.integration.reservation_helpers import uow
from wx_service.edges.demo_data import (DEMO_COUNTER_STAFF, DEMO_GOODS, DEMO_SERVICES, DEMO_STAFF,
                                        demo_special_days, load_demo_staff)
from wx_service.ground.db import utcnow


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def ok(app, *args: str) -> str:
    result = cli(app, *args)
    assert result.exit_code == 0, result.output
    return result.output


def refused(app, *args: str) -> str:
    result = cli(app, *args)
    assert result.exit_code != 0, result.output
    return result.output


def counts(app) -> tuple[int, ...]:
    with uow(app) as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (
            Service, Resource, OpeningHours, HoursException, HoldableVariant, Staff, StaffRole))


def starts(app, service_id: int, day) -> list[str]:
    with uow(app):
        return [v.starts_at.astimezone(slots.STORE_ZONE).strftime("%H:%M")
                for v in bookings.availability(service_id, day, slots.store_midnight(day) - timedelta(days=1))]


def test_an_operator_defines_a_service_its_resources_hours_and_special_days(app):
    today = slots.store_day(utcnow())
    # Two weeks on, a Monday and the Friday after it.
    monday = today + timedelta(days=14 - today.weekday())
    friday, holiday = monday + timedelta(days=4), monday + timedelta(days=1)
    added = ok(app, "reservations", "service-add", "beauty", "美容咨询", "LANCOME", "--duration", "30",
               "--buffer", "15", "--lead", "60", "--horizon", "30")
    assert "added service beauty (美容咨询) at LANCOME" in added
    changed = ok(app, "reservations", "service-add", "beauty", "美容咨询", "LANCOME", "--duration", "45",
                 "--buffer", "15", "--horizon", "30")
    assert "updated service beauty" in changed and "45 min + 15 min buffer" in changed
    assert "added staff 美容顾问 小美" in ok(app, "reservations", "resource-add", "beauty", "美容顾问 小美",
                                          "--capacity", "2")
    assert "added station 1号美容台" in ok(app, "reservations", "resource-add", "beauty", "1号美容台",
                                        "--kind", "station")
    week = ok(app, "reservations", "hours-set", "LANCOME", "Mon-Fri 10:00-22:00; Sat,Sun 10:00-20:00")
    assert "Mon 10:00-22:00" in week and "Sun 10:00-20:00" in week
    assert "Sun closed" in ok(app, "reservations", "hours-set", "LANCOME", "Sun closed")
    assert "every counter closed (节日)" in ok(app, "reservations", "exception-add", "*", holiday.isoformat(),
                                            "closed", "节日")
    late = ok(app, "reservations", "exception-add", "LANCOME", friday.isoformat(), "10:00-23:30", "周五夜场")
    assert f"added: {friday.isoformat()} LANCOME open 10:00-23:30 (周五夜场)" in late
    listing = ok(app, "reservations", "list")
    for words in ("LANCOME", "beauty", "美容咨询", "45+15 min", "美容顾问 小美", "x2", "1号美容台",
                  "Sun closed", f"{friday.isoformat()}: 10:00-23:30 (周五夜场)", "* (every counter)",
                  f"{holiday.isoformat()}: closed (节日)"):
        assert words in listing, words
    with uow(app) as s:
        service_id = s.scalar(select(Service.id).where(Service.code == "beauty"))
    hourly = lambda first, last: [f"{h:02d}:00" for h in range(first, last + 1)]  # noqa: E731
    assert starts(app, service_id, monday) == hourly(10, 21)
    assert starts(app, service_id, holiday) == []
    assert starts(app, service_id, friday) == hourly(10, 22)
    assert starts(app, service_id, friday + timedelta(days=2)) == []  # Sunday, closed now
    with uow(app):
        assert {v.capacity for v in bookings.availability(service_id, monday, utcnow())} == {3}


def test_what_cannot_be_set_up_is_refused_with_the_reason_and_stores_nothing(app):
    before = counts(app)
    assert "no service nope" in refused(app, "reservations", "resource-add", "nope", "小美")
    assert "lasts 5 to 720 minutes" in refused(app, "reservations", "service-add", "x", "X", "LANCOME",
                                               "--duration", "0")
    assert "service code" in refused(app, "reservations", "service-add", "bad code!", "X", "LANCOME",
                                     "--duration", "30")
    assert "opening must come before closing" in refused(app, "reservations", "hours-set", "LANCOME",
                                                         "Mon-Fri 22:00-10:00")
    assert "not a weekday" in refused(app, "reservations", "hours-set", "LANCOME", "Someday 10:00-22:00")
    assert "belong to one counter" in refused(app, "reservations", "hours-set", "*", "daily 10:00-22:00")
    assert "not a day" in refused(app, "reservations", "exception-add", "*", "2030-13-01", "closed")
    assert "neither 'closed' nor HH:MM-HH:MM" in refused(app, "reservations", "exception-add", "*", "2030-01-01",
                                                         "shut")
    ok(app, "reservations", "service-add", "beauty", "美容咨询", "LANCOME", "--duration", "45")
    assert "Invalid value for '--kind'" in refused(app, "reservations", "resource-add", "beauty", "R2",
                                                   "--kind", "robot")
    assert "1 to 100000" in refused(app, "reservations", "resource-add", "beauty", "R2", "--capacity", "0")
    assert counts(app) == (before[0] + 1, *before[1:])
    assert "nothing defined yet" not in ok(app, "reservations", "list")


def fake_catalog(monkeypatch, result):
    """`reservations.catalog` (another module's work) as a stand-in that records what it was given."""
    seen: list[str] = []

    def import_variants(csv_text: str, **audited):
        seen.append(csv_text)
        seen.append(audited)
        return result

    module = types.ModuleType("reservations.catalog")
    module.import_variants = import_variants
    monkeypatch.setitem(sys.modules, "reservations.catalog", module)
    return seen


def test_variants_import_hands_the_file_to_the_catalog_and_reports_its_verdict(app, monkeypatch, tmp_path):
    sheet = tmp_path / "goods.csv"
    text = "counter_code,brand,product,variant,holdable\nLANCOME,兰蔻,小黑瓶精华,30ml,5\n"
    sheet.write_bytes(("\ufeff" + text).encode("utf-8"))  # as a spreadsheet saves "CSV UTF-8"
    seen = fake_catalog(monkeypatch, types.SimpleNamespace(created=1, updated=2, unchanged=3, errors=[]))
    assert "1 added, 2 updated, 3 unchanged" in ok(app, "reservations", "variants-import", str(sheet))
    assert seen == [text, {"cli": True, "detail": "goods.csv"}]  # recorded in the audit log as the CLI's
    fake_catalog(monkeypatch, types.SimpleNamespace(created=0, updated=0, unchanged=0,
                                                    errors=["line 3: holdable must be a whole number"]))
    output = refused(app, "reservations", "variants-import", str(sheet))
    assert "line 3: holdable must be a whole number" in output and "nothing imported" in output
    latin = tmp_path / "latin.csv"
    latin.write_bytes("counter_code\nCaf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in refused(app, "reservations", "variants-import", str(latin))
    assert "does not exist" in refused(app, "reservations", "variants-import", str(tmp_path / "missing.csv"))


def test_the_demo_has_services_goods_and_counter_staff_and_loads_once(app):
    for _ in range(2):
        assert "4 bookable services" in ok(app, "demo-data")
        with uow(app):
            line = load_demo_staff()
    first = counts(app)
    ok(app, "demo-data")
    with uow(app):
        load_demo_staff()
    assert counts(app) == first  # a rerun changes nothing
    resources = sum(len(row[-1]) for row in DEMO_SERVICES)
    counters = len({row[2] for row in DEMO_SERVICES})
    assert first == (4, resources, counters * 7, 2, len(DEMO_GOODS), 4, 5)  # roles: admin; counter + cashier; marketing; analyst
    counter_user, _, counter_password, counter = DEMO_COUNTER_STAFF
    assert f"{counter_user} / {counter_password}" in line and f"{DEMO_STAFF[0]} / {DEMO_STAFF[2]}" in line
    with uow(app):
        assert staff_service.counters_of(staff_service.authenticate(counter_user, counter_password).id) == {counter}
        assert staff_service.counters_of(staff_service.authenticate(DEMO_STAFF[0], DEMO_STAFF[2]).id) is None
    with uow(app) as s:
        names = {s.name: s.id for s in s.scalars(select(Service))}
        assert set(names) == {"美容咨询", "裁缝修改", "私人购物顾问", "试衣间"}
        assert s.scalar(select(Service.counter_code).where(Service.name == "美容咨询")) == counter
    friday, new_year = demo_special_days(slots.store_day(utcnow()))
    assert demo_special_days(date(2026, 12, 28)) == (date(2027, 1, 8), date(2027, 1, 1))  # not on the holiday
    ordinary = friday + timedelta(days=4)  # the Tuesday after
    assert starts(app, names["美容咨询"], ordinary)[0] == "10:00"
    assert starts(app, names["美容咨询"], ordinary)[-1] == "21:00"  # 45 min + 15: the 21:00 one ends 21:45
    assert starts(app, names["美容咨询"], friday)[-1] == "22:00"  # the late night
    assert starts(app, names["美容咨询"], new_year) == [] and starts(app, names["试衣间"], new_year) == []
