"""The store's content in the mini-program API, end to end: real HTTP to the live server, the
shopper logged in through the emulated wx.login, every JSON answer checked against the OpenAPI
document (times in the store's +08:00). Unknown ids are 404s, malformed filters 400s naming the
parameter, and nothing a client sends gives a 5xx."""
from __future__ import annotations

from datetime import date, time, timedelta
from urllib.parse import quote

import jsonschema
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from marketing import listings
from marketing.models import DRAFT, UNPUBLISHED
from tests.e2e.test_mp_reservations import TIMEOUT, Shopper, shopper_ids
from tests.fuzz.harness import Harness, odd_text
from tests.integration import content_helpers as make
from wx_service.edges.api.mp_openapi import CONTENT_PATHS, SPEC
from wx_service.ground.db import utcnow


@pytest.fixture
def alice(app, base_url, emulator) -> Shopper:
    return Shopper(app, base_url, shopper_ids(emulator)[0])


def get(shopper: Shopper, path: str, spec_path: str | None = None) -> requests.Response:
    return shopper.call("GET", path, spec_path)


def names(items: list[dict], key: str = "name") -> list[str]:
    return [i[key] for i in items]


# -- stores ----------------------------------------------------------------------------------------

def test_stores_with_todays_hours_and_nearest_first_given_a_location(app, alice, base_url):
    today = listings.store_day()
    futian = make.store(app, "FT", "福田店", lat=22.5333, lng=114.0550, sort_order=1)
    nanshan = make.store(app, "NS", "南山店", lat=22.5176, lng=113.9301, sort_order=2)
    make.store(app, "X", "无坐标店", lat=None, lng=None, sort_order=3, hours={"sat": ["10:00", "22:00"]})
    make.exception(app, nanshan, today, time(10), time(23, 30), note="夜场")
    stores = get(alice, "/stores").json()["stores"]
    assert names(stores) == ["福田店", "南山店", "无坐标店"]
    assert stores[0]["today"] == {"day": today.isoformat(), "opens": "10:00", "closes": "22:00", "closed": False,
                                  "note": "", "exceptional": False, "text": "10:00-22:00"}
    assert stores[1]["today"]["text"] == "10:00-23:30（夜场）" and stores[1]["today"]["exceptional"]
    assert stores[2]["weekly_hours"]["sat"] == ["10:00", "22:00"] and stores[2]["weekly_hours"]["mon"] is None
    assert all(s["distance_km"] is None for s in stores)
    near = get(alice, "/stores?lat=22.52&lng=113.93").json()["stores"]
    assert names(near) == ["南山店", "福田店", "无坐标店"]
    assert near[0]["distance_km"] == 0.3 and near[1]["distance_km"] == 12.9 and near[2]["distance_km"] is None
    assert futian == near[1]["id"]


@pytest.mark.parametrize("query,field", [("lat=91&lng=0", "lat"), ("lat=1", "lng"), ("lng=1", "lat"),
                                         ("lat=abc&lng=1", "lat"), ("lat=nan&lng=1", "lat"), ("lat=1&lng=inf", "lng")])
def test_a_bad_location_is_a_400_naming_it(app, alice, query, field):
    answer = get(alice, f"/stores?{query}", "/stores")
    assert answer.status_code == 400 and answer.json()["field"] == field


# -- brands ----------------------------------------------------------------------------------------

@pytest.fixture
def five_brands(app) -> dict[str, int]:
    shop = make.store(app)
    ids = {}
    for i, name in enumerate(["A1", "A2", "A3", "A4", "A5"]):
        ids[name] = make.brand(app, name, name.lower(), counter=name, floor="1F" if i < 4 else "2F",
                               categories=["美妆", "香水"] if i % 2 == 0 else ["服饰"],
                               store_id=shop if i < 2 else None)
    make.brand(app, "A0", "gone", counter="A0", active=False)
    ids["store"] = shop
    return ids


def test_brands_filter_by_category_floor_and_store(app, alice, five_brands):
    assert names(get(alice, f"/brands?category={quote('香水')}", "/brands").json()["brands"]) == ["A1", "A3", "A5"]
    assert names(get(alice, "/brands?floor=2F", "/brands").json()["brands"]) == ["A5"]
    by_store = get(alice, f"/brands?store={five_brands['store']}", "/brands").json()
    assert names(by_store["brands"]) == ["A1", "A2"] and by_store["total"] == 2
    assert get(alice, "/brands?store=999999", "/brands").json() == {"brands": [], "total": 0, "limit": 20,
                                                                     "offset": 0, "next_cursor": None}


def test_brands_page_by_offset_or_by_cursor_with_the_total(app, alice, five_brands):
    first = get(alice, "/brands?limit=2", "/brands").json()
    assert names(first["brands"]) == ["A1", "A2"] and first["total"] == 5 and first["offset"] == 0
    seen = list(names(first["brands"]))
    cursor = first["next_cursor"]
    while cursor:
        page = get(alice, f"/brands?limit=2&cursor={cursor}", "/brands").json()
        assert page["offset"] is None and page["total"] == 5
        seen += names(page["brands"])
        cursor = page["next_cursor"]
    assert seen == ["A1", "A2", "A3", "A4", "A5"]
    assert names(get(alice, "/brands?limit=2&offset=4", "/brands").json()["brands"]) == ["A5"]


@pytest.mark.parametrize("query,field", [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"),
                                         ("limit=x", "limit"), ("store=0", "store"), ("store=99999999999", "store"),
                                         ("cursor=nope", "cursor"), ("cursor=WyJBMSIsIDFd&offset=2", "cursor"),
                                         ("category=%00", "category"), ("floor=" + "x" * 65, "floor")])
def test_a_bad_brand_filter_is_a_400_naming_it(app, alice, five_brands, query, field):
    answer = get(alice, f"/brands?{query}", "/brands")
    assert answer.status_code == 400 and answer.json()["field"] == field, answer.json()


def test_a_brand_with_its_new_arrivals_current_activities_and_todays_discounts(app, alice, base_url, five_brands):
    a1, a2 = five_brands["A1"], five_brands["A2"]
    logo = make.image(app)
    with_logo = make.brand(app, "兰蔻", "Lancome", store_id=five_brands["store"], logo_image_id=logo,
                           categories=["美妆", "护肤"], description="法国护肤")
    make.arrival(app, with_logo, "面霜")
    make.arrival(app, with_logo, "草稿", status=DRAFT)
    make.arrival(app, a1, "别家的")
    now = utcnow()
    make.activity(app, "正在进行", brands=(with_logo, a2))
    make.activity(app, "已结束", starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=2), brands=(with_logo,))
    make.activity(app, "下架了", brands=(with_logo,), status=UNPUBLISHED)
    make.discount(app, "今天有效", brand_id=with_logo)
    make.discount(app, "明天开始", brand_id=with_logo, valid_from=listings.store_day() + timedelta(days=1))
    brand = get(alice, f"/brands/{with_logo}", "/brands/{brand_id}").json()["brand"]
    assert (brand["name"], brand["name_en"], brand["categories"]) == ("兰蔻", "Lancome", ["美妆", "护肤"])
    assert brand["logo_url"] == f"{base_url}/content/images/{logo}"
    assert brand["store"]["id"] == five_brands["store"]
    assert names(brand["new_arrivals"], "product") == ["面霜"]
    assert names(brand["activities"], "title") == ["正在进行"]
    assert sorted(names(brand["activities"][0]["brands"])) == sorted(["兰蔻", "A2"])
    assert names(brand["discounts"], "title") == ["今天有效"]


@pytest.mark.parametrize("path", ["/brands/{}", "/activities/{}"])
def test_unknown_or_hidden_ids_are_404(app, alice, five_brands, path):
    hidden_activity = make.activity(app, "草稿", status=DRAFT)
    inactive = make.brand(app, "停了", "stopped", counter="S", active=False)
    spec_path = path.format("{brand_id}" if "brands" in path else "{activity_id}")
    for unknown in (999_999, hidden_activity if "activities" in path else inactive, 2**31, 2**63):
        answer = get(alice, path.format(unknown), spec_path)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found", unknown


# -- activities, new arrivals, discounts -----------------------------------------------------------

def test_activities_filter_by_brand_store_and_days_paged(app, alice, five_brands):
    a1, a2, shop = five_brands["A1"], five_brands["A2"], five_brands["store"]
    at = listings.day_start
    first = make.activity(app, "A", starts_at=at(date(2030, 1, 1)) + timedelta(hours=10), brands=(a1,), store_id=shop,
                          body="正文", place="中庭")
    make.activity(app, "B", starts_at=at(date(2030, 1, 3)) + timedelta(hours=10), brands=(a1, a2))
    make.activity(app, "C", starts_at=at(date(2030, 1, 5)) + timedelta(hours=10), brands=(a2,), store_id=shop)
    make.activity(app, "D", starts_at=at(date(2030, 1, 6)) + timedelta(hours=10), status=DRAFT)
    listed = get(alice, "/activities").json()
    assert names(listed["activities"], "title") == ["A", "B", "C"] and listed["total"] == 3
    assert listed["activities"][0]["starts_at"] == "2030-01-01T10:00:00+08:00"
    assert names(get(alice, f"/activities?brand={a1}", "/activities").json()["activities"], "title") == ["A", "B"]
    assert names(get(alice, f"/activities?store={shop}", "/activities").json()["activities"], "title") == ["A", "C"]
    days = get(alice, "/activities?from=2030-01-02&to=2030-01-03", "/activities").json()
    assert names(days["activities"], "title") == ["B"]
    page = get(alice, "/activities?limit=1&offset=2", "/activities").json()
    assert names(page["activities"], "title") == ["C"] and (page["total"], page["limit"], page["offset"]) == (3, 1, 2)
    one = get(alice, f"/activities/{first}", "/activities/{activity_id}").json()["activity"]
    assert (one["title"], one["body"], one["place"], one["store"]["id"]) == ("A", "正文", "中庭", shop)
    assert names(one["brands"]) == ["A1"]


@pytest.mark.parametrize("query,field", [("from=2030-13-01", "from"), ("to=tomorrow", "to"),
                                         ("from=2030-01-05&to=2030-01-01", "to"), ("brand=abc", "brand"),
                                         ("brand=-3", "brand"), ("offset=100001", "offset")])
def test_a_bad_activity_filter_is_a_400_naming_it(app, alice, query, field):
    answer = get(alice, f"/activities?{query}", "/activities")
    assert answer.status_code == 400 and answer.json()["field"] == field


def test_new_arrivals_newest_first_of_a_brand_paged(app, alice, five_brands):
    a1, a2 = five_brands["A1"], five_brands["A2"]
    now = utcnow()
    make.arrival(app, a1, "旧", publish_at=now - timedelta(days=3))
    make.arrival(app, a1, "新", publish_at=now - timedelta(days=1))
    make.arrival(app, a2, "别家", publish_at=now - timedelta(days=2))
    make.arrival(app, a1, "将来", publish_at=now + timedelta(days=1))
    everything = get(alice, "/new-arrivals").json()
    assert names(everything["new_arrivals"], "product") == ["新", "别家", "旧"] and everything["total"] == 3
    mine = get(alice, f"/new-arrivals?brand={a1}&limit=1", "/new-arrivals").json()
    assert names(mine["new_arrivals"], "product") == ["新"] and mine["total"] == 2
    assert mine["new_arrivals"][0]["brand"] == {"id": a1, "name": "A1", "name_en": "a1"}
    assert get(alice, "/new-arrivals?brand=x", "/new-arrivals").status_code == 400


def test_discounts_valid_today_by_default(app, alice, five_brands):
    a1 = five_brands["A1"]
    today = listings.store_day()
    make.discount(app, "今天", brand_id=a1, valid_from=today, valid_until=today)
    make.discount(app, "全场")
    make.discount(app, "下周", brand_id=a1, valid_from=today + timedelta(days=7), valid_until=today + timedelta(days=9))
    listed = get(alice, "/discounts").json()
    assert sorted(names(listed["discounts"], "title")) == ["今天", "全场"] and listed["day"] == today.isoformat()
    assert [d["brand"] for d in listed["discounts"] if d["title"] == "全场"] == [None]
    assert names(get(alice, f"/discounts?brand={a1}", "/discounts").json()["discounts"], "title") == ["今天"]
    later = (today + timedelta(days=8)).isoformat()
    assert names(get(alice, f"/discounts?day={later}", "/discounts").json()["discounts"], "title") == ["下周"]
    assert get(alice, "/discounts?day=2030-02-30", "/discounts").json()["field"] == "day"


# -- the spec, the session, hostile input ------------------------------------------------------------

def test_the_spec_examples_are_valid_answers():
    for path, ops in CONTENT_PATHS.items():
        for op in ops.values():
            content = op["responses"]["200"]["content"]["application/json"]
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": SPEC["components"],
                      **content["schema"]}
            jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
                content["example"])


def test_every_content_route_needs_the_session(base_url):
    for path, ops in CONTENT_PATHS.items():
        for method in ops:
            url = base_url + "/api/mp" + path.replace("{brand_id}", "1").replace("{activity_id}", "1")
            answer = requests.request(method, url, timeout=TIMEOUT)
            assert answer.status_code == 401 and answer.json()["error"] == "unauthorized", path


def test_hostile_queries_never_give_a_5xx(app, alice, five_brands):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {alice.token}"}
    paths = ("/stores", "/brands", "/activities", "/new-arrivals", "/discounts")
    names_ = ("lat", "lng", "category", "floor", "store", "brand", "limit", "offset", "cursor", "from", "to", "day")
    with Harness(app, "mp-content:queries") as harness:
        @given(path=st.sampled_from(paths), name=st.sampled_from(names_),
               value=odd_text | st.integers().map(str) | st.floats().map(str))
        def run(path: str, name: str, value: str) -> None:
            # Percent-encoded by hand: a lone surrogate goes as the bytes it makes, as a hostile client's would.
            query = f"{name}={quote(value.encode('utf-8', 'surrogatepass'))}"
            harness.check(lambda: client.get(f"/api/mp{path}?{query}", headers=headers))
        run()
        for raw in ("/brands?cursor=%ED%A0%80", "/brands?cursor=" + "A" * 401, "/brands/abc", "/activities/-1",
                    "/stores?lat=1e999&lng=1", "/discounts?day=%00"):
            assert harness.check(lambda r=raw: client.get("/api/mp" + r, headers=headers), raw) in (400, 404)
