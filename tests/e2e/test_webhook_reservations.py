"""The OA's way in to reservations: the keyword 预约 (or 预订) answers, in every push mode, with a
text carrying the absolute link to the H5 reservation pages (on the host WeChat reached us at), and
the menu's 预约服务 view button opens the same pages. The keyword reply costs what any plain keyword
reply costs: no Redis command and no SQL statement more.
"""
from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from handlers import reservations as reservation_handlers
from tests.conftest import requires_redis
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.test_webhook import MODES, TIMEOUT, new_openid, push, reply_for, rows, text_fields
from tests.integration.reservation_helpers import service as make_service
from tests.integration.test_notification_statements import show, statements
from wx_service.edges import h5_reservations
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.models import InboundPush

LINK = re.compile(r"https?://\S+")


def test_the_handler_links_to_the_h5_reservation_pages():
    assert reservation_handlers.RESERVATION_PAGES == h5_reservations.BASE


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("word", ["预约", "预订"])
def test_the_keyword_answers_with_the_link_to_the_reservation_pages_in_each_mode(base_url, emulator, wx, mode, word):
    openid = new_openid()
    _, _, answer = push(base_url, emulator, text_fields(emulator, openid, word), mode)
    reply = reply_for(wx.settings, answer, mode, openid)
    assert reply["MsgType"] == "text" and "预约" in reply["Content"]
    assert LINK.findall(reply["Content"]) == [f"{base_url}{h5_reservations.BASE}"]
    [record] = rows(wx, InboundPush)
    assert record.handler == "handlers.reservations.reservation_link" and record.content == word


def test_the_link_opens_the_reservation_pages_after_the_oa_sign_in(base_url, emulator, app):
    make_service(app)
    openid = next(iter(emulator.shoppers))
    out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": "预约"},
                        timeout=TIMEOUT).json()
    assert out["delivered"] and out["reply"] == "text", out
    [said] = [m["content"] for m in emulator.shoppers[openid].chat if m["via"] == "passive"]
    [link] = LINK.findall(said)
    first = requests.get(link, allow_redirects=False, timeout=TIMEOUT)  # a new browser: sign in first, come back
    assert first.status_code == 302 and urlsplit(first.headers["Location"]).path == "/h5/oauth/start"
    assert parse_qs(urlsplit(first.headers["Location"]).query)["next"] == [h5_reservations.BASE]


def test_in_production_the_link_is_https_on_the_requests_host(app, monkeypatch):
    """Behind the TLS proxy the app sees http; the link the shopper gets must be https."""
    from wx_service.ground import links

    monkeypatch.setattr(links, "settings", lambda: SimpleNamespace(ENV_NAME="production"))
    with app.test_request_context("/wechat", base_url="http://mall.example.com"):
        assert links.public_url("/h5/reservations") == "https://mall.example.com/h5/reservations"
    with pytest.raises(RuntimeError):
        links.public_url("/h5/reservations")  # no request: no host to link to


def _pushed(app, emulator, words: str) -> int:
    query, body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), words)), "safe")
    return app.test_client().post("/wechat", query_string=query, data=body).status_code


def test_the_keyword_reply_costs_no_sql_statement_more_than_a_plain_keyword_reply(app, emulator):
    _pushed(app, emulator, "帮助")  # warm
    with statements(app) as plain:
        assert _pushed(app, emulator, "帮助") == 200
    with statements(app) as keyword:
        assert _pushed(app, emulator, "预约") == 200
    show("plain keyword reply", plain)
    show("预约", keyword)
    assert len(keyword) == len(plain) <= 1  # the push's record only


@requires_redis
def test_the_keyword_reply_costs_no_redis_command_more_than_a_plain_keyword_reply(base_url, emulator, wx):
    def calls() -> dict[str, int]:
        stats = wx.redis.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_info"}

    def spent_on(words: str) -> dict[str, int]:
        before = calls()
        for _ in range(5):
            push(base_url, emulator, text_fields(emulator, new_openid(), words))
        after = calls()
        spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
        for setup in ("cmdstat_hello", "cmdstat_select", "cmdstat_client|setinfo"):  # a connection per test thread
            spent.pop(setup, 0)
        return spent

    push(base_url, emulator, text_fields(emulator, new_openid(), "帮助"))  # warm: script loaded, token cached
    plain = spent_on("帮助")
    assert spent_on("预约") == plain == {"cmdstat_evalsha": 5, "cmdstat_set": 10, "cmdstat_exists": 5}


# -- in a real browser: the emulated phone ---------------------------------------------------------

@pytest.fixture
def browser():
    with headless_chromium("oa-reservations", window="900,900") as driver:
        yield driver


@needs_chromium
def test_the_shopper_types_the_keyword_and_taps_the_menus_button_to_reach_the_pages(app, base_url, emulator,
                                                                                       browser):
    """On the emulated phone: 预约 gets the link in the chat; the pushed menu's 预约服务 button (a
    view button, made a full URL on this host) opens the reservation pages, signed in."""
    from selenium.webdriver.common.by import By

    from tests.e2e.test_shopper_page import click_button, send_text, wait, wait_for_bubble
    from wx_service.edges.cli.wechat import MENU_FILE, load_menu
    from wx_service.ground.extensions import wechat_client

    service, _ = make_service(app)
    with app.app_context():
        wechat_client().menu.create(load_menu(MENU_FILE, base_url))
    browser.get(f"{base_url}/_emulator/")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shoppers .shopper.active")) == 1)

    send_text(browser, "预约")
    reply = wait_for_bubble(browser, "account", f"{base_url}{h5_reservations.BASE}", via="passive")
    assert reply.kind == "text"

    phone = browser.current_window_handle
    click_button(browser, "#menu > .top > button", "☰ 商场资讯")
    click_button(browser, "#menu .sub button", "预约服务")
    wait(browser).until(lambda d: len(d.window_handles) == 2, "the view button opened no page")
    browser.switch_to.window(next(h for h in browser.window_handles if h != phone))
    wait(browser).until(lambda d: d.find_elements(By.ID, f"service-{service}"), "the reservation pages never showed")
    assert urlsplit(browser.current_url).path == h5_reservations.BASE
    assert browser.find_elements(By.ID, "goods-link")
