"""Brand subscriptions from every channel, as the shopper does it (issue 12): OA keywords through
the emulator's chat, the mini-program API (answers checked against the OpenAPI spec), the H5 page
after the OA sign-in (opened plainly or from the OA menu), and the console channel through the
service. Every real change is one ledger row saying when, what and which channel; a repeat
changes nothing and writes no row; a new subscription is one funnel touch."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from marketing import subscriptions
from marketing.models import BrandSubscriptionChange, Touch
from tests.e2e.test_h5_pay import sign_in
from tests.e2e.test_h5_reservations import forms, page, post
from tests.e2e.test_mp_reservations import Shopper as MpShopper
from tests.integration.brand_news_helpers import brand
from tests.integration.reservation_helpers import uow

TIMEOUT = 10
PAGE = "/h5/brand-subscriptions"


def say(base_url: str, emulator, openid: str, text: str) -> str:
    """The shopper types `text` in the OA chat; the account's passive reply."""
    before = len(emulator.shoppers[openid].chat)
    out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": text},
                        timeout=TIMEOUT).json()
    assert out["delivered"], out
    [reply] = [m["content"] for m in emulator.shoppers[openid].chat[before:] if m["via"] == "passive"]
    return reply


def ledger(app, openid: str) -> list[tuple[str, str, int, str]]:
    with uow(app) as session:
        return [(c.action, c.channel, c.brand_id, c.source) for c in session.scalars(
            select(BrandSubscriptionChange).where(BrandSubscriptionChange.openid == openid)
            .order_by(BrandSubscriptionChange.id))]


def touches(app, openid: str) -> list[tuple[str, int]]:
    with uow(app) as session:
        return [(t.kind, t.brand_id) for t in session.scalars(select(Touch).where(Touch.openid == openid))]


def subscribed(app, openid: str) -> list[str]:
    with uow(app):
        return [b.name for b in subscriptions.brands_of(openid)]


def test_oa_keywords_subscribe_list_and_unsubscribe_by_either_name(app, base_url, emulator):
    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    openid = next(iter(emulator.shoppers))
    assert "已订阅兰蔻" in say(base_url, emulator, openid, "订阅 兰蔻")
    assert "您已订阅兰蔻" in say(base_url, emulator, openid, "订阅 LANCOME")  # English name, any case: nothing new
    assert "已订阅迪奥" in say(base_url, emulator, openid, "关注品牌 dior")
    listed = say(base_url, emulator, openid, "我的订阅")
    assert "兰蔻" in listed and "迪奥" in listed
    assert "已退订迪奥" in say(base_url, emulator, openid, "取消订阅 迪奥")
    assert "您未订阅迪奥" in say(base_url, emulator, openid, "退订 Dior")
    assert "没有找到品牌" in say(base_url, emulator, openid, "订阅 不存在的牌子")
    assert subscribed(app, openid) == ["兰蔻"]
    assert ledger(app, openid) == [("subscribe", "oa_keyword", lancome, "订阅 兰蔻"),
                                   ("subscribe", "oa_keyword", dior, "关注品牌 dior"),
                                   ("unsubscribe", "oa_keyword", dior, "取消订阅 迪奥")]
    assert sorted(touches(app, openid)) == sorted([("brand_subscribe", lancome), ("brand_subscribe", dior)])


def test_the_menu_button_lists_them_with_the_page_link(app, base_url, emulator):
    lancome = brand(app)
    openid = next(iter(emulator.shoppers))
    with uow(app):
        subscriptions.subscribe(openid, lancome, "console", "staff:1")
    out = requests.post(f"{base_url}/_emulator/shopper/click", json={"openid": openid, "key": "MY_BRANDS"},
                        timeout=TIMEOUT)
    assert out.status_code == 200, out.text
    said = [m["content"] for m in emulator.shoppers[openid].chat if m["via"] == "passive"][-1]
    assert "兰蔻" in said and f"{base_url}{PAGE}?from=menu" in said
    assert ledger(app, openid) == [("subscribe", "console", lancome, "staff:1")]


def test_the_mini_program_subscribes_and_unsubscribes_idempotently(app, base_url, emulator):
    lancome = brand(app)
    emu = next(iter(emulator.shoppers.values()))
    mp = MpShopper(app, base_url, emu.openid)
    first = mp.call("PUT", f"/brands/{lancome}/subscription", "/brands/{brand_id}/subscription")
    again = mp.call("PUT", f"/brands/{lancome}/subscription", "/brands/{brand_id}/subscription")
    assert (first.status_code, first.json()["changed"], again.json()["changed"]) == (200, True, False)
    listing = mp.call("GET", "/brand-subscriptions").json()
    assert listing["subscribed"] == [lancome] and listing["subscribe_template_ids"] == ["DEMO_brand_news_subscribe"]
    assert [b["subscribed"] for b in listing["brands"]] == [True]
    gone = mp.call("DELETE", f"/brands/{lancome}/subscription", "/brands/{brand_id}/subscription")
    assert gone.json() == {"brand": {"id": lancome, "name": "兰蔻", "name_en": "Lancome", "floor": "",
                                     "subscribed": False}, "changed": True}
    assert mp.call("DELETE", f"/brands/{lancome}/subscription", "/brands/{brand_id}/subscription").json()["changed"] is False
    assert mp.call("PUT", "/brands/999/subscription", "/brands/{brand_id}/subscription").status_code == 404
    assert ledger(app, emu.mp_openid) == [("subscribe", "mp", lancome, "mini-program"),
                                          ("unsubscribe", "mp", lancome, "mini-program")]


@pytest.mark.parametrize("origin, channel", [("", "h5"), ("?from=menu", "oa_menu")])
def test_the_h5_page_toggles_after_the_oa_sign_in(app, base_url, emulator, origin, channel):
    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    openid = next(iter(emulator.shoppers))
    http = sign_in(base_url, openid, PAGE + origin)
    shown = page(base_url, http, PAGE + origin).text
    assert "兰蔻" in shown and "迪奥" in shown
    toggle = next(f for f in forms(shown) if f["action"] == f"{PAGE}/{dior}")
    assert (toggle["do"], toggle.get("from", "")) == ("subscribe", origin.removeprefix("?from="))
    done = post(base_url, http, toggle)
    assert done.status_code == 303
    after = page(base_url, http, done.headers["Location"]).text
    assert "订阅成功" in after
    assert post(base_url, http, toggle).status_code == 303  # the same form again (a double tap): no change
    off = next(f for f in forms(after) if f["action"] == f"{PAGE}/{dior}")
    assert off["do"] == "unsubscribe"
    assert post(base_url, http, off).status_code == 303
    assert ledger(app, openid) == [("subscribe", channel, dior, "h5 page"), ("unsubscribe", channel, dior, "h5 page")]
    assert subscribed(app, openid) == []
    assert next(f for f in forms(page(base_url, http, PAGE).text) if f["action"] == f"{PAGE}/{lancome}")["do"] == "subscribe"


def test_h5_writes_need_the_sessions_csrf_token(app, base_url, emulator):
    dior = brand(app, "迪奥", "Dior", "DIOR")
    openid = next(iter(emulator.shoppers))
    http = sign_in(base_url, openid, PAGE)
    refused = http.post(f"{base_url}{PAGE}/{dior}", data={"csrf": "forged", "do": "subscribe"},
                        allow_redirects=False, timeout=TIMEOUT)
    assert refused.status_code == 403 and ledger(app, openid) == []


def test_every_channel_is_recorded_and_an_unknown_one_refused(app):
    lancome = brand(app)
    with uow(app):
        for n, channel in enumerate(("oa_keyword", "oa_menu", "mp", "h5", "console")):
            assert subscriptions.subscribe(f"oChannel{n}", lancome, channel, f"via {channel}")
            assert not subscriptions.subscribe(f"oChannel{n}", lancome, channel, "again")
        with pytest.raises(ValueError):
            subscriptions.subscribe("oChannelX", lancome, "sms")
    rows = [ledger(app, f"oChannel{n}") for n in range(5)]
    assert [r[0][1] for r in rows] == ["oa_keyword", "oa_menu", "mp", "h5", "console"]
    assert all(len(r) == 1 for r in rows)
