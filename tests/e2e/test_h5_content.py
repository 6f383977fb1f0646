"""The store's content as OA H5 pages, over HTTP and in headless Chromium at a phone's size: the
shopper signs in through the emulated web authorization, sees an activity's page (from the OA's
news card) and a brand's page (floor, counter, categories, logo, new arrivals, current activities,
today's discounts); each view records a page_view touch with the brand(s) and the `from` campaign."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from marketing.models import DRAFT, Touch
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.test_h5_pay import go, location, shopper, sign_in
from tests.e2e.test_webhook import articles, new_openid, push, reply_for, text_fields
from tests.integration import content_helpers as make
from tests.integration.members_helpers import make_member, uow
from wx_service.ground.db import utcnow

TIMEOUT = 15


def page_views(app) -> list[tuple]:
    with uow(app) as session:
        return [(t.openid, t.member_id, t.brand_id, t.campaign) for t in session.scalars(
            select(Touch).where(Touch.kind == "page_view").order_by(Touch.id))]


@pytest.fixture
def content(app) -> dict[str, int]:
    """A store, a brand with a logo and everything its page shows, a second brand, an activity of both."""
    shop = make.store(app, "FT", "福田店")
    logo = make.image(app, "lancome.png")
    lancome = make.brand(app, "兰蔻", "Lancome", store_id=shop, floor="1F", counter="LANCOME-01",
                         categories=["美妆", "护肤"], logo_image_id=logo, description="法国护肤与彩妆")
    dior = make.brand(app, "迪奥", "Dior", counter="DIOR")
    make.arrival(app, lancome, "菁纯面霜 60ml", 168_050, description="全新升级")
    make.arrival(app, lancome, "草稿新品", status=DRAFT)
    activity = make.activity(app, "周末美妆节", brands=(lancome, dior), store_id=shop, place="一楼中庭",
                             summary="满 1000 减 100", body="第一段\n第二段", starts_at=utcnow() - timedelta(hours=1))
    make.discount(app, "兰蔻满 1000 减 100", brand_id=lancome, description="限本周")
    return {"store": shop, "logo": logo, "lancome": lancome, "dior": dior, "activity": activity}


# -- over HTTP ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/h5/activities/{activity}?from=qr-l1", "/h5/brands/{lancome}?from=qr-l1"])
def test_an_unknown_shopper_signs_in_first_and_comes_back_with_the_campaign(app, base_url, content, path):
    wanted = path.format(**content)
    first = go(requests.Session(), base_url + wanted)
    assert urlsplit(location(first)).path == "/h5/oauth/start"
    assert parse_qs(urlsplit(location(first)).query)["next"] == [wanted]
    assert page_views(app) == []  # nobody to record yet


def test_the_brand_page_shows_the_brand_and_records_a_view_with_the_campaign(app, base_url, emulator, content):
    buyer = shopper(emulator)
    member = make_member(app, oa_openid=buyer.openid)
    path = f"/h5/brands/{content['lancome']}?from=counter-lancome-l1"
    http = sign_in(base_url, buyer.openid, path)
    answer = http.get(base_url + path, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    text = answer.text
    for shown in ("兰蔻", "Lancome", "1F", "LANCOME-01", "美妆", "护肤", "法国护肤与彩妆", "菁纯面霜 60ml", "¥1680.50",
                  "全新升级", "周末美妆节", "兰蔻满 1000 减 100", "限本周", "福田店"):
        assert shown in text, shown
    assert "草稿新品" not in text
    assert f'src="{base_url}/content/images/{content["logo"]}"' in text
    assert f'href="/h5/activities/{content["activity"]}?from=counter-lancome-l1"' in text
    assert page_views(app) == [(buyer.openid, member, content["lancome"], "counter-lancome-l1")]
    http.get(base_url + f"/h5/brands/{content['lancome']}", timeout=TIMEOUT)  # each view counts, no campaign
    assert page_views(app)[1:] == [(buyer.openid, member, content["lancome"], "")]


def test_the_activity_page_records_a_view_for_each_of_its_brands(app, base_url, emulator, content):
    buyer = shopper(emulator)
    path = f"/h5/activities/{content['activity']}?from=spring:2026"
    http = sign_in(base_url, buyer.openid, path)
    text = http.get(base_url + path, timeout=TIMEOUT).text
    for shown in ("周末美妆节", "满 1000 减 100", "福田店 一楼中庭", "第一段\n第二段", "兰蔻", "迪奥"):
        assert shown in text, shown
    assert f'href="/h5/brands/{content["dior"]}?from=spring%3A2026"' in text
    assert sorted(page_views(app), key=lambda v: v[2]) == [(buyer.openid, None, content["lancome"], "spring:2026"),
                                                           (buyer.openid, None, content["dior"], "spring:2026")]


@pytest.mark.parametrize("campaign", ["<script>", "x" * 65, "a b", ""])
def test_a_from_that_is_no_campaign_key_is_not_recorded(app, base_url, emulator, content, campaign):
    buyer = shopper(emulator)
    path = f"/h5/brands/{content['dior']}"
    http = sign_in(base_url, buyer.openid, path)
    answer = http.get(base_url + path, params={"from": campaign}, timeout=TIMEOUT)
    assert answer.status_code == 200 and "<script>" not in answer.text
    assert page_views(app) == [(buyer.openid, None, content["dior"], "")]


@pytest.mark.parametrize("path", ["/h5/activities/999999", "/h5/brands/999999", "/h5/activities/{draft}",
                                  "/h5/brands/{gone}", f"/h5/brands/{2**31}", f"/h5/activities/{2**63}"])
def test_an_unknown_or_unpublished_page_is_a_404_and_records_nothing(app, base_url, emulator, content, path):
    draft = make.activity(app, "草稿活动", status=DRAFT)
    gone = make.brand(app, "撤柜", "Gone", counter="GONE", active=False)
    wanted = path.format(draft=draft, gone=gone)
    http = sign_in(base_url, shopper(emulator).openid, wanted)
    answer = http.get(base_url + wanted, timeout=TIMEOUT)
    assert answer.status_code == 404 and "内容不存在或已下线" in answer.text
    assert page_views(app) == []


def test_the_oa_card_opens_the_activity_page_after_sign_in(app, base_url, emulator, wx, content):
    openid = new_openid()
    _, _, answer = push(base_url, emulator, text_fields(emulator, openid, "本周活动"))
    [card] = articles(reply_for(wx.settings, answer, "safe", openid))
    assert card["Url"] == f"{base_url}/h5/activities/{content['activity']}"
    buyer = shopper(emulator)
    http = sign_in(base_url, buyer.openid, urlsplit(card["Url"]).path)
    assert "周末美妆节" in http.get(card["Url"], timeout=TIMEOUT).text


# -- in a real browser, at a phone's size --------------------------------------------------------------

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")


@pytest.fixture
def phone():
    with headless_chromium("h5-content", window="390,844", extra_args=(f"--user-agent={WECHAT_UA}",)) as driver:
        yield driver


@needs_chromium
def test_a_shopper_opens_the_card_and_walks_to_the_brand_on_a_phone(app, base_url, emulator, content, phone):
    """The news card's link in WeChat's browser: sign-in hops through the emulated OAuth, the
    activity's page fits the phone's width, a tap on a brand opens its page with its new arrival."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    buyer = shopper(emulator)  # the emulator's authorize page signs in the first shopper
    wait = WebDriverWait(phone, 20)
    phone.get(f"{base_url}/h5/activities/{content['activity']}?from=qr-l1")
    seen = wait.until(lambda d: d.execute_script(
        "const t = document.getElementById('title'); return t && {title: t.textContent,"
        " when: document.getElementById('when').textContent, wide: document.documentElement.scrollWidth,"
        " view: window.innerWidth};"))
    assert seen["title"] == "周末美妆节" and "至" in seen["when"]
    assert seen["wide"] <= seen["view"]  # nothing sideways to scroll on a phone
    assert urlsplit(phone.current_url).path == f"/h5/activities/{content['activity']}"

    phone.find_element(By.CSS_SELECTOR, f"a.brand[data-id='{content['lancome']}']").click()
    brand = wait.until(lambda d: d.execute_script(
        "const n = document.getElementById('name'); return n && {name: n.textContent,"
        " floor: document.getElementById('floor').textContent,"
        " products: [...document.querySelectorAll('.arrival .product')].map(e => e.textContent),"
        " wide: document.documentElement.scrollWidth, view: window.innerWidth};"))
    assert brand["name"].startswith("兰蔻") and brand["floor"] == "1F"
    assert brand["products"] == ["菁纯面霜 60ml"] and brand["wide"] <= brand["view"]
    assert urlsplit(phone.current_url).query == "from=qr-l1"
    views = page_views(app)
    assert [(v[0], v[2], v[3]) for v in views if v[2] == content["lancome"]] == [
        (buyer.openid, content["lancome"], "qr-l1"), (buyer.openid, content["lancome"], "qr-l1")]


def test_a_page_costs_the_same_statements_however_much_it_shows(app, base_url, emulator, content):
    """No statement per item: more arrivals, activities, discounts and brands cost nothing more."""
    from tests.integration.test_notification_statements import show, statements

    buyer = shopper(emulator)
    http = sign_in(base_url, buyer.openid, "/h5/pay")
    client = app.test_client()
    for cookie in http.cookies:
        client.set_cookie(cookie.name, cookie.value)

    def cost(path: str) -> int:
        with statements(app) as sent:
            assert client.get(path).status_code == 200
        show(path, sent)
        return len(sent)

    brand, activity = f"/h5/brands/{content['lancome']}", f"/h5/activities/{content['activity']}"
    before = cost(brand), cost(activity)
    for i in range(3):
        make.arrival(app, content["lancome"], f"新品{i}")
        make.activity(app, f"活动{i}", brands=(content["lancome"],))
        make.discount(app, f"优惠{i}", brand_id=content["lancome"])
    assert (cost(brand), cost(activity)) == before
    assert before == (8, 6)  # brand page: brand, store, 3 lists, their brands, member, touch; activity: 2 touches
