"""The read side of the store's content: what is visible now, this store-week's activities, a
brand by name, today's hours with exceptions, the nearest store."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from marketing import geo, listings
from marketing.models import DRAFT, SCHEDULED, UNPUBLISHED
from tests.integration import content_helpers as make
from tests.integration.members_helpers import uow
from wx_service.ground.db import utcnow

SHANGHAI = listings.STORE_ZONE


def at(*args: int) -> datetime:
    """A store-time wall clock as UTC."""
    return datetime(*args, tzinfo=SHANGHAI).astimezone(timezone.utc)


def titles(items) -> list[str]:
    return [getattr(i, "title", None) or getattr(i, "product", None) for i in items]


def test_visible_means_published_and_inside_its_window(app):
    now = utcnow()
    hour = timedelta(hours=1)
    brand = make.brand(app)
    make.arrival(app, brand, "published")
    make.arrival(app, brand, "draft", status=DRAFT)
    make.arrival(app, brand, "scheduled", status=SCHEDULED, publish_at=now + hour)
    make.arrival(app, brand, "unpublished", status=UNPUBLISHED)
    make.arrival(app, brand, "not yet", publish_at=now + hour)  # published early, publish_at still to come
    make.arrival(app, brand, "taken down", unpublish_at=now - hour)  # scheduler not run yet
    make.arrival(app, brand, "until later", unpublish_at=now + hour)
    with uow(app):
        found, total = listings.new_arrivals(brand_id=brand)
        assert sorted(titles(found)) == ["published", "until later"] and total == 2
        later, _ = listings.new_arrivals(brand_id=brand, now=now + 2 * hour)
        assert sorted(titles(later)) == ["not yet", "published"]


def test_this_weeks_activities_are_those_overlapping_monday_to_sunday_in_store_time(app):
    # Wednesday 2026-12-02 in Shanghai; the week is Mon 11-30 00:00 to Mon 12-07 00:00 (+08:00).
    now = at(2026, 12, 2, 12, 0)
    make.activity(app, "last week", starts_at=at(2026, 11, 27, 10), ends_at=at(2026, 11, 29, 23, 59))
    make.activity(app, "ends monday 00:30", starts_at=at(2026, 11, 29, 20), ends_at=at(2026, 11, 30, 0, 30))
    make.activity(app, "sunday night", starts_at=at(2026, 12, 6, 23, 30), ends_at=at(2026, 12, 7, 1))
    make.activity(app, "next monday", starts_at=at(2026, 12, 7, 0, 0), ends_at=at(2026, 12, 7, 22))
    make.activity(app, "all month", starts_at=at(2026, 12, 1, 10), ends_at=at(2026, 12, 31, 22))
    make.activity(app, "draft", starts_at=at(2026, 12, 3, 10), status=DRAFT)
    with uow(app):
        assert titles(listings.activities_this_week(now)) == ["ends monday 00:30", "all month", "sunday night"]
        assert titles(listings.activities_this_week(now, limit=1)) == ["ends monday 00:30"]
        # Sunday 23:59 store time is still the same week; Monday 00:00 starts the next.
        assert "sunday night" in titles(listings.activities_this_week(at(2026, 12, 6, 23, 59)))
        assert titles(listings.activities_this_week(at(2026, 12, 7, 0, 0))) == ["all month", "sunday night",
                                                                                  "next monday"]


def test_activities_filter_by_brand_store_and_days_with_a_total(app):
    shop = make.store(app)
    lancome, dior = make.brand(app), make.brand(app, "迪奥", "Dior", counter="DIOR")
    make.activity(app, "A", starts_at=at(2030, 1, 1, 10), brands=(lancome,), store_id=shop)
    make.activity(app, "B", starts_at=at(2030, 1, 3, 10), brands=(lancome, dior))
    make.activity(app, "C", starts_at=at(2030, 1, 5, 10), brands=(dior,), store_id=shop)
    with uow(app):
        assert titles(listings.activities(brand_id=lancome)[0]) == ["A", "B"]
        assert titles(listings.activities(store_id=shop)[0]) == ["A", "C"]
        assert titles(listings.activities(from_day=date(2030, 1, 2), to_day=date(2030, 1, 3))[0]) == ["B"]
        page, total = listings.activities(limit=1, offset=1)
        assert titles(page) == ["B"] and total == 3
        brands = listings.brands_of_activities(a.id for a in listings.activities()[0])
        assert sorted(len(v) for v in brands.values()) == [1, 1, 2]


@pytest.mark.parametrize("typed,expected", [("兰蔻", "兰蔻"), ("LANCOME", "兰蔻"), ("lanc", "兰蔻"), ("  Lancome ", "兰蔻"),
                                            ("雅诗", "雅诗兰黛"), ("Estée", None), ("e", "雅诗兰黛"), ("d", None), ("迪", None),
                                            ("%", None), ("_", None), ("", None)])
def test_a_brand_is_found_by_either_name_any_case_or_a_unique_prefix(app, typed, expected):
    make.brand(app, "兰蔻", "Lancome")
    make.brand(app, "雅诗兰黛", "Estee Lauder", counter="EL")
    make.brand(app, "迪奥", "Dior", counter="DIOR")
    make.brand(app, "迪桑娜", "Dissona", counter="DISSONA")
    make.brand(app, "旧品牌", "Old", counter="OLD", active=False)
    with uow(app):
        found = listings.find_brand(typed)
        assert (found.name if found else None) == expected


def test_brands_filter_by_category_floor_and_store_paged_by_offset_or_cursor(app):
    shop = make.store(app)
    for i, name in enumerate(["A1", "A2", "A3", "A4", "A5"]):
        make.brand(app, name, name, counter=name, floor="1F" if i < 4 else "2F",
                   categories=["美妆", "香水"] if i % 2 == 0 else ["服饰"], store_id=shop if i < 2 else None)
    with uow(app):
        assert [b.name for b in listings.brands(category="香水").brands] == ["A1", "A3", "A5"]
        assert [b.name for b in listings.brands(floor="2F").brands] == ["A5"]
        assert [b.name for b in listings.brands(store_id=shop).brands] == ["A1", "A2"]
        first = listings.brands(limit=2)
        assert [b.name for b in first.brands] == ["A1", "A2"] and first.total == 5
        second = listings.brands(limit=2, after=first.next_after)
        assert [b.name for b in second.brands] == ["A3", "A4"]
        last = listings.brands(limit=2, after=second.next_after)
        assert [b.name for b in last.brands] == ["A5"] and last.next_after is None
        assert [b.name for b in listings.brands(limit=2, offset=3).brands] == ["A4", "A5"]


def test_discounts_valid_today_in_store_time(app):
    brand = make.brand(app)
    today = listings.store_day()
    make.discount(app, "today only", brand_id=brand, valid_from=today, valid_until=today)
    make.discount(app, "ended yesterday", brand_id=brand, valid_from=today - timedelta(days=5),
                  valid_until=today - timedelta(days=1))
    make.discount(app, "from tomorrow", brand_id=brand, valid_from=today + timedelta(days=1))
    make.discount(app, "store-wide")
    with uow(app):
        assert titles(listings.discounts(brand_id=brand)[0]) == ["today only"]
        assert sorted(titles(listings.discounts()[0])) == ["store-wide", "today only"]
        assert titles(listings.discounts(brand_id=brand, on_day=today + timedelta(days=1))[0]) == ["from tomorrow"]


def test_todays_hours_come_from_the_week_unless_an_exception_says_otherwise(app):
    weekdays_only = {d: ["10:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    make.store(app, "A", "A 店", hours=weekdays_only, sort_order=2)
    b = make.store(app, "B", "B 店", sort_order=1)
    c = make.store(app, "C", "C 店", sort_order=3)
    make.store(app, "Z", "关了的店", active=False)
    wednesday, saturday = at(2026, 12, 2, 9), at(2026, 12, 5, 9)
    make.exception(app, b, date(2026, 12, 2), time(10), time(23, 30), note="圣诞夜场")
    make.exception(app, c, date(2026, 12, 2), note="设备检修")
    with uow(app):
        today = {s.name: h.describe() for s, h in listings.stores_today(wednesday)}
        assert list(today) == ["B 店", "A 店", "C 店"]
        assert today == {"B 店": "10:00-23:30（圣诞夜场）", "A 店": "10:00-22:00", "C 店": "休息（设备检修）"}
        weekend = {s.name: h for s, h in listings.stores_today(saturday)}
        assert weekend["A 店"].closed and not weekend["B 店"].closed and weekend["B 店"].note == ""


@pytest.mark.parametrize("pair,shown", [(["10:00", "22:00"], "10:00-22:00"), (["09:30", "24:00"], "09:30-23:59"),
                                        (["10:00"], "休息"), (["25:00", "22:00"], "休息"), ("10-22", "休息"),
                                        (None, "休息")])
def test_weekly_hours_as_the_console_may_have_written_them(pair, shown):
    from marketing.models import Store

    store = Store(code="X", name="X", weekly_hours={"thu": pair})
    assert listings.hours_on(store, date(2026, 12, 3)).describe() == shown  # a Thursday


def test_haversine_matches_known_distances():
    assert geo.haversine_km(0, 0, 0, 0) == 0
    assert geo.haversine_km(0, 0, 1, 0) == pytest.approx(111.195, abs=0.01)  # one degree of a meridian
    # Shenzhen Futian to Guangzhou Tianhe: about 100 km as the crow flies, either way round.
    assert geo.haversine_km(22.5333, 114.0550, 23.1291, 113.3245) == pytest.approx(99.97, abs=0.05)
    assert geo.haversine_km(23.1291, 113.3245, 22.5333, 114.0550) == pytest.approx(99.97, abs=0.05)
    assert geo.haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=1)  # half the equator


def test_the_nearest_active_store_with_coordinates(app):
    make.store(app, "FT", "福田店", lat=22.5333, lng=114.0550)
    make.store(app, "NS", "南山店", lat=22.5176, lng=113.9301)
    make.store(app, "X", "没坐标", lat=None, lng=None)
    make.store(app, "OFF", "停业", lat=22.5430, lng=114.0578, active=False)
    with uow(app):
        near = geo.nearest_store(22.5431, 114.0579)  # beside the closed store, 1.5 km from Futian
        assert near.store.name == "福田店" and 1.0 < near.km < 2.0
        assert geo.nearest_store(22.52, 113.93).store.name == "南山店"
        assert geo.nearest_store(91, 0) is None


def test_no_store_with_coordinates_is_none(app):
    make.store(app, lat=None, lng=None)
    with uow(app):
        assert geo.nearest_store(22.5, 114.0) is None
