"""The store's content in the OA, end to end through the emulator's push building, in every push
mode: this week's activities (menu and keywords), a brand's new arrivals, the stores' hours today,
the nearest store for a LOCATION event or a location message. News cards open the H5 pages. Each
reply costs one read in the handler's unit of work (two for new arrivals: the brand, its list) and
no Redis command more than any keyword reply."""
from __future__ import annotations

import time
from datetime import date, timedelta
from datetime import time as clock

import pytest

from handlers import content
from handlers.routes import MENU_ACTIVITIES, MENU_STORE_INFO
from marketing import listings
from marketing.models import DRAFT
from tests.conftest import requires_redis
from tests.e2e.test_webhook import MODES, articles, event_fields, new_openid, push, reply_for, rows, text_fields, this_weeks_activities
from tests.integration import content_helpers as make
from tests.integration.test_notification_statements import show, statements
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.db import utcnow
from wx_service.ground.models import InboundPush


def ask(base_url, emulator, wx, mode: str, fields) -> dict:
    openid = fields[1][1]
    _, _, answer = push(base_url, emulator, fields, mode)
    return reply_for(wx.settings, answer, mode, openid)


def said(base_url, emulator, wx, mode: str, words: str) -> dict:
    return ask(base_url, emulator, wx, mode, text_fields(emulator, new_openid(), words))


def location_message(emulator, lat: str, lng: str, openid: str | None = None) -> list:
    return [("ToUserName", emulator.original_id), ("FromUserName", openid or new_openid()), ("CreateTime", int(time.time())),
            ("MsgType", "location"), ("Location_X", lat), ("Location_Y", lng), ("Scale", "15"),
            ("Label", "深圳市福田区"), ("MsgId", emulator.next_msg_id())]


def test_the_cards_link_to_the_h5_pages_the_service_serves(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert f"{content.ACTIVITY_PAGES}/<int:activity_id>" in rules
    assert f"{content.BRAND_PAGES}/<int:brand_id>" in rules


# -- activities -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_the_menu_lists_this_weeks_activities_up_to_eight_with_their_pages(base_url, emulator, wx, app, mode):
    ids = this_weeks_activities(app)
    now = utcnow()
    image = make.image(app)
    more = [make.activity(app, f"活动{i}", starts_at=now + timedelta(minutes=i), cover_image_id=image)
            for i in range(7)]
    make.activity(app, "草稿", status=DRAFT)
    make.activity(app, "下周", starts_at=listings.week_of()[1] + timedelta(hours=10))
    reply = ask(base_url, emulator, wx, mode, event_fields(emulator, new_openid(), "CLICK", MENU_ACTIVITIES))
    assert reply["MsgType"] == "news"
    cards = articles(reply)
    assert len(cards) == 8  # WeChat's limit for an event, soonest first
    assert [c["Title"] for c in cards[:3]] == ["双十二满 300 减 50", "周末亲子手作课", "美妆柜台免费试妆"]
    assert [c["Url"] for c in cards] == [f"{base_url}/h5/activities/{i}" for i in (ids + more)[:8]]
    assert cards[3]["PicUrl"] == f"{base_url}/content/images/{image}"
    assert " 至 " in cards[0]["Description"]  # when it runs, in store time


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("word", ["活动", "本周活动"])
def test_the_keywords_answer_one_card_the_soonest_activity(base_url, emulator, wx, app, mode, word):
    ids = this_weeks_activities(app)
    [card] = articles(said(base_url, emulator, wx, mode, word))
    assert (card["Title"], card["Url"]) == ("双十二满 300 减 50", f"{base_url}/h5/activities/{ids[0]}")


def test_a_week_without_activities_says_so(base_url, emulator, wx, app):
    make.activity(app, "草稿", status=DRAFT)
    reply = said(base_url, emulator, wx, "safe", "本周活动")
    assert reply["MsgType"] == "text" and "本周暂无活动" in reply["Content"]


# -- new arrivals -----------------------------------------------------------------------------------

@pytest.fixture
def lancome(app) -> int:
    brand = make.brand(app, "兰蔻", "Lancome")
    make.brand(app, "雅诗兰黛", "Estee Lauder", counter="EL")
    return brand


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("words", ["新品 兰蔻", "兰蔻新品", "新品 Lancome", "新品lancome", "兰蔻 新品"])
def test_a_brands_new_arrival_comes_as_a_card_to_its_page(base_url, emulator, wx, app, lancome, mode, words):
    image = make.image(app)
    make.arrival(app, lancome, "菁纯面霜 60ml", 168_000, image_id=image, description="全新升级")
    make.arrival(app, lancome, "草稿新品", status=DRAFT)
    [card] = articles(said(base_url, emulator, wx, mode, words))
    assert card["Title"] == "兰蔻 新品：菁纯面霜 60ml"
    assert card["Description"] == "¥1680　全新升级"
    assert card["Url"] == f"{base_url}/h5/brands/{lancome}"
    assert card["PicUrl"] == f"{base_url}/content/images/{image}"


def test_several_new_arrivals_fit_in_one_card_listing_them(base_url, emulator, wx, app, lancome):
    make.arrival(app, lancome, "A 精华", 50_050)
    make.arrival(app, lancome, "B 面霜", 60_000)
    [card] = articles(said(base_url, emulator, wx, "safe", "新品 兰蔻"))
    assert card["Title"] == "兰蔻 新品 2 款"
    assert card["Description"] == "B 面霜 ¥600、A 精华 ¥500.50"  # newest first
    assert card["Url"] == f"{base_url}/h5/brands/{lancome}"


@pytest.mark.parametrize("words", ["新品 香奈儿", "新品"])
def test_an_unknown_brand_gets_a_few_names_to_try(base_url, emulator, wx, app, lancome, words):
    reply = said(base_url, emulator, wx, "safe", words)
    assert reply["MsgType"] == "text"
    assert "兰蔻" in reply["Content"] and "雅诗兰黛" in reply["Content"] and "新品 品牌名" in reply["Content"]
    if words != "新品":
        assert "香奈儿" in reply["Content"]


def test_a_brand_without_new_arrivals_says_so_with_its_page(base_url, emulator, wx, app, lancome):
    reply = said(base_url, emulator, wx, "safe", "兰蔻新品")
    assert reply["MsgType"] == "text" and "暂时没有新品" in reply["Content"]
    assert f"{base_url}/h5/brands/{lancome}" in reply["Content"]


def test_a_complaint_about_new_arrivals_still_reaches_a_person(base_url, emulator, wx, app, lancome):
    reply = said(base_url, emulator, wx, "safe", "投诉新品")
    assert "人工客服" in reply["Content"]


# -- discounts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("word", ["优惠", "折扣"])
def test_the_discount_keywords_answer_todays_discounts_ending_soonest_first(base_url, emulator, wx, app, lancome,
                                                                          mode, word):
    from datetime import timedelta

    today = listings.store_day()
    make.discount(app, "全场满 1000 减 100", valid_until=today + timedelta(days=10), description="限时")
    make.discount(app, "兰蔻 8 折", brand_id=lancome, valid_until=today + timedelta(days=2))
    make.discount(app, "已结束", valid_from=today - timedelta(days=9), valid_until=today - timedelta(days=1))
    make.discount(app, "草稿", status=DRAFT)
    [card] = articles(said(base_url, emulator, wx, mode, word))  # a reply to a message carries one card
    assert (card["Title"], card["Url"]) == ("兰蔻 8 折", f"{base_url}/h5/brands/{lancome}")
    assert card["Description"].endswith("前有效")


def test_a_day_without_discounts_says_so(base_url, emulator, wx, app):
    reply = said(base_url, emulator, wx, "safe", "优惠")
    assert reply["MsgType"] == "text" and "暂无优惠" in reply["Content"]


# -- stores -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["门店", "营业时间", "menu"])
def test_each_stores_hours_today_with_exception_notes(base_url, emulator, wx, app, mode, how):
    today = listings.store_day()
    make.store(app, "FT", "福田店", address="福田区深南大道 1 号", phone="0755-1", sort_order=1)
    night = make.store(app, "NS", "南山店", sort_order=2)
    shut = make.store(app, "LH", "罗湖店", sort_order=3)
    make.exception(app, night, today, clock(10), clock(23, 30), note="夜场")
    make.exception(app, shut, today, note="设备检修")
    make.exception(app, shut, today + timedelta(days=1), clock(9), clock(21))  # another day: not today's
    fields = (event_fields(emulator, new_openid(), "CLICK", MENU_STORE_INFO) if how == "menu"
              else text_fields(emulator, new_openid(), how))
    reply = ask(base_url, emulator, wx, mode, fields)
    assert reply["MsgType"] == "text"
    lines = reply["Content"].splitlines()
    assert lines[0].startswith(f"今日（{today:%m月%d日}")
    assert "福田店：10:00-22:00" in lines and "南山店：10:00-23:30（夜场）" in lines and "罗湖店：休息（设备检修）" in lines
    assert "地址：福田区深南大道 1 号" in lines
    assert lines.index("福田店：10:00-22:00") < lines.index("南山店：10:00-23:30（夜场）")


# -- the nearest store --------------------------------------------------------------------------------

@pytest.fixture
def two_stores(app) -> None:
    make.store(app, "FT", "福田店", lat=22.5333, lng=114.0550, address="深南大道 1 号")
    nanshan = make.store(app, "NS", "南山店", lat=22.5176, lng=113.9301)
    make.exception(app, nanshan, listings.store_day(), note="盘点")


@pytest.mark.parametrize("mode", MODES)
def test_a_location_event_gets_the_nearest_store_its_distance_and_hours(base_url, emulator, wx, app, two_stores,
                                                                        mode):
    fields = event_fields(emulator, new_openid(), "LOCATION", Latitude="22.543096", Longitude="114.057865",
                          Precision="65.0")
    reply = ask(base_url, emulator, wx, mode, fields)
    assert reply["MsgType"] == "text"
    lines = reply["Content"].splitlines()
    assert lines[:3] == ["离您最近的门店：福田店", "距离约 1.1 公里", "今日营业：10:00-22:00"]
    assert "地址：深南大道 1 号" in lines


@pytest.mark.parametrize("mode", MODES)
def test_a_location_message_gets_the_nearest_store(base_url, emulator, wx, app, two_stores, mode):
    reply = ask(base_url, emulator, wx, mode, location_message(emulator, "22.5200", "113.9350"))
    assert reply["Content"].splitlines()[:3] == ["离您最近的门店：南山店", "距离约 0.6 公里", "今日营业：休息（盘点）"]
    [record] = rows(wx, InboundPush)
    assert record.handler == "handlers.content.nearest_store"


@pytest.mark.parametrize("mode", MODES)
def test_a_follower_reporting_location_every_few_seconds_hears_the_nearest_store_once_per_half_hour(
        base_url, emulator, wx, app, two_stores, mode):
    """WeChat may push LOCATION every 5 s while the chat is open: one answer, then silence, then an
    answer again once the shopper comes back half an hour later. What the shopper sends is always
    answered."""
    openid = new_openid()
    start = int(time.time())
    push(base_url, emulator, event_fields(emulator, openid, "subscribe", create_time=start - 60), mode)

    def report(at: int):
        return push(base_url, emulator, event_fields(emulator, openid, "LOCATION", create_time=at,
                                                     Latitude="22.543096", Longitude="114.057865", Precision="65.0"),
                    mode)[2]

    first = reply_for(wx.settings, report(start), mode, openid)
    assert first["Content"].startswith("离您最近的门店：福田店")
    for later in (start + 5, start + 10, start + 29 * 60):
        assert report(later).content == b"success"  # nothing said, no reply
    sent = ask(base_url, emulator, wx, mode, location_message(emulator, "22.5200", "113.9350", openid))
    assert sent["Content"].startswith("离您最近的门店：南山店")
    again = reply_for(wx.settings, report(start + 31 * 60), mode, openid)
    assert again["Content"].startswith("离您最近的门店：福田店")


def test_a_location_without_a_store_with_coordinates(base_url, emulator, wx, app):
    make.store(app, lat=None, lng=None)
    reply = ask(base_url, emulator, wx, "safe", location_message(emulator, "22.52", "113.93"))
    assert reply["MsgType"] == "text" and "门店" in reply["Content"]
    _, _, answer = push(base_url, emulator, event_fields(emulator, new_openid(), "LOCATION", Latitude="22.5",
                                                         Longitude="114.0", Precision="30"))
    assert answer.content == b"success"  # an event we cannot answer bothers no one


@pytest.mark.parametrize("lat,lng", [("abc", "114"), ("91", "114"), ("nan", "114"), ("", "")])
def test_a_location_that_is_no_place_changes_nothing_but_the_record(base_url, emulator, wx, app, two_stores,
                                                                    lat, lng):
    _, _, answer = push(base_url, emulator, event_fields(emulator, new_openid(), "LOCATION", Latitude=lat,
                                                         Longitude=lng, Precision="30"))
    assert answer.status_code == 200 and answer.content == b"success"


# -- what a reply costs ---------------------------------------------------------------------------------

def _pushed(app, emulator, fields) -> int:
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    return app.test_client().post("/wechat", query_string=query, data=body).status_code


@pytest.mark.parametrize("what,extra_reads", [("本周活动", 1), ("优惠", 1), ("门店", 1), ("新品 兰蔻", 2), ("location", 1),
                                              ("LOCATION", 2)])
def test_each_reply_costs_its_reads_and_the_pushs_record(app, emulator, lancome, two_stores, what, extra_reads):
    """The handler's reads and the push's row, in one transaction: no statement per card or store."""
    this_weeks_activities(app)
    make.arrival(app, lancome, "A")
    make.arrival(app, lancome, "B")

    def fields():
        if what == "location":
            return location_message(emulator, "22.52", "113.93")
        if what == "LOCATION":
            return event_fields(emulator, new_openid(), "LOCATION", Latitude="22.52", Longitude="113.93",
                                Precision="30")
        return text_fields(emulator, new_openid(), what)

    _pushed(app, emulator, text_fields(emulator, new_openid(), "帮助"))  # warm
    with statements(app) as sent:
        assert _pushed(app, emulator, fields()) == 200
    show(what, sent)
    reads = [s for s in sent if s.upper().startswith("SELECT")]
    writes = [s.split(" (")[0] for s in sent if not s.upper().startswith("SELECT")]
    assert len(reads) == extra_reads
    # The push's record, in the handler's transaction; a LOCATION report also claims its answer
    # (one conditional UPDATE; this shopper is no follower yet, so the second read finds no row).
    assert [" ".join(w.split()[:3]) for w in writes] == (
        ["UPDATE followers SET", "INSERT INTO inbound_pushes"] if what == "LOCATION" else ["INSERT INTO inbound_pushes"])


@requires_redis
def test_content_replies_cost_no_redis_command_more_than_a_plain_keyword_reply(base_url, emulator, wx, app,
                                                                               two_stores, lancome):
    this_weeks_activities(app)

    def calls() -> dict[str, int]:
        stats = wx.redis.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_info"}

    def spent_on(fields_of) -> dict[str, int]:
        before = calls()
        for _ in range(3):
            push(base_url, emulator, fields_of())
        after = calls()
        spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
        for setup in ("cmdstat_hello", "cmdstat_select", "cmdstat_client|setinfo"):  # a connection per test thread
            spent.pop(setup, 0)
        return spent

    push(base_url, emulator, text_fields(emulator, new_openid(), "帮助"))  # warm
    plain = spent_on(lambda: text_fields(emulator, new_openid(), "帮助"))
    assert plain == {"cmdstat_evalsha": 3, "cmdstat_set": 6, "cmdstat_exists": 3}
    for fields_of in (lambda: text_fields(emulator, new_openid(), "本周活动"),
                      lambda: text_fields(emulator, new_openid(), "新品 兰蔻"),
                      lambda: text_fields(emulator, new_openid(), "门店"),
                      lambda: event_fields(emulator, new_openid(), "CLICK", MENU_ACTIVITIES),
                      lambda: location_message(emulator, "22.52", "113.93")):
        assert spent_on(fields_of) == plain


def test_the_store_day_decides_todays_hours_near_midnight():
    """23:30 UTC on a Sunday is Monday 07:30 in the store: Monday's hours."""
    from datetime import datetime, timezone

    from marketing.models import Store

    store = Store(code="X", name="X", weekly_hours={"mon": ["10:00", "22:00"]})
    monday = listings.store_day(datetime(2026, 12, 6, 23, 30, tzinfo=timezone.utc))
    assert monday == date(2026, 12, 7)
    assert listings.hours_on(store, monday).describe() == "10:00-22:00"
    assert listings.hours_on(store, monday - timedelta(days=1)).closed


# -- on the emulated phone ---------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["location", "report_location"])
def test_the_emulated_shopper_shares_a_location_and_sees_the_nearest_store(base_url, emulator, wx, app,
                                                                           two_stores, action):
    import requests

    openid = next(iter(emulator.shoppers))
    out = requests.post(f"{base_url}/_emulator/shopper/{action}",
                        json={"openid": openid, "latitude": 22.543096, "longitude": 114.057865, "label": "市民中心"},
                        timeout=15).json()
    assert out["delivered"] and out["reply"] == "text", out
    [answer] = [m["content"] for m in emulator.shoppers[openid].chat if m["via"] == "passive"]
    assert answer.splitlines()[:3] == ["离您最近的门店：福田店", "距离约 1.1 公里", "今日营业：10:00-22:00"]
    [record] = rows(wx, InboundPush)
    assert (record.msg_type, record.event) == (("location", "") if action == "location" else ("event", "location"))


def test_the_emulator_refuses_a_location_that_is_no_place(base_url, emulator):
    import requests

    openid = next(iter(emulator.shoppers))
    for body in ({"latitude": "x", "longitude": 1}, {"latitude": 91, "longitude": 0}, {}):
        answer = requests.post(f"{base_url}/_emulator/shopper/location", json={"openid": openid, **body}, timeout=15)
        assert answer.status_code == 400, body
