"""The emulator's shopper page in a real (headless) Chromium: what a person clicking around sees.

Needs Debian's `chromium` and `chromium-driver` packages (/usr/bin/chromium, /usr/bin/chromedriver);
without them the module is skipped. Every wait is an explicit WebDriverWait on something visible.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.browser import headless_chromium, needs_chromium

SCREENSHOT = "/tmp/shopper_page.png"
UNAVAILABLE = "该公众号暂时无法提供服务，请稍后再试"
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 20  # seconds an explicit wait may take before the test fails

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("shopper-page") as driver:
        yield driver


@pytest.fixture
def page(browser, app, base_url, emulator):
    """The shopper page, freshly loaded for this test's emulator, with the first shopper selected."""
    browser.get(f"{base_url}/_emulator/")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shoppers .shopper.active")) == 1)
    yield browser
    browser.get("about:blank")  # stop the page polling while the next test cleans up


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def bubbles(driver, sender: str | None = None) -> list:
    selector = "#chat .bubble" + (f".from-{sender}" if sender else "")
    return driver.find_elements(By.CSS_SELECTOR, selector)


def wait_for_bubble(driver, sender: str, text: str, via: str | None = None):
    """The chat bubble from `sender` containing `text` (and, if given, marked `via`)."""
    def found(d):
        for b in bubbles(d, sender):
            if text in b.text and (via is None or b.get_attribute("data-via") == via):
                return b
        return False
    return wait(driver).until(found, f"no bubble from {sender} containing {text!r}")


def send_text(driver, content: str) -> None:
    box = driver.find_element(By.ID, "message")
    box.clear()
    box.send_keys(content)
    driver.find_element(By.ID, "send").click()


def click_button(driver, css: str, label: str) -> None:
    """Find and click the button labelled `label` in one go (the page re-renders while polling)."""
    def clicked(d):
        for b in d.find_elements(By.CSS_SELECTOR, css):
            if b.text.strip() == label and b.is_displayed():
                b.click()
                return True
        return False
    wait(driver).until(clicked, f"no button {label!r} in {css}")


def current_openid(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#shoppers .shopper.active").get_attribute("data-openid")


def help_text(app) -> str:
    return app.extensions["wx"].settings.HELP_TEXT


# -- tests ---------------------------------------------------------------------------------------

def test_page_lists_the_shoppers_and_shows_the_account(page, emulator):
    names = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#shoppers .shopper")]
    assert names == [s.nickname for s in emulator.shoppers.values()] == ["小美", "阿强", "Lily"]
    assert current_openid(page) == next(iter(emulator.shoppers))
    wait(page).until(lambda d: emulator.original_id in d.find_element(By.ID, "account").text)
    assert bubbles(page) == []
    assert "No menu pushed yet" in page.find_element(By.ID, "menu").text


def test_help_keyword_gets_the_help_reply_from_the_account(page, app, emulator):
    send_text(page, "帮助")
    mine = wait_for_bubble(page, "user", "帮助")
    reply = wait_for_bubble(page, "account", "您可以", via="passive")
    assert help_text(app).splitlines()[0] in reply.text
    assert "被动回复" in reply.find_element(By.CSS_SELECTOR, ".via").text
    assert page.find_element(By.ID, "message").get_attribute("value") == ""
    # The shopper's own message sits on the right, the account's reply on the left.
    chat = page.find_element(By.ID, "chat").rect
    assert mine.rect["x"] + mine.rect["width"] > reply.rect["x"] + reply.rect["width"]
    assert mine.rect["x"] > reply.rect["x"]
    assert reply.rect["x"] - chat["x"] < chat["width"] / 4
    assert (chat["x"] + chat["width"]) - (mine.rect["x"] + mine.rect["width"]) < chat["width"] / 4
    # And the emulator recorded it for that shopper.
    chat_log = emulator.shoppers[current_openid(page)].chat
    assert [(m["from"], m["kind"]) for m in chat_log] == [("user", "text"), ("account", "text")]


def test_switching_shopper_shows_their_own_chat(page, emulator):
    first, second = list(emulator.shoppers)[:2]
    send_text(page, "帮助")
    wait_for_bubble(page, "account", "您可以")
    click_button(page, "#shoppers .shopper", "阿强")
    wait(page).until(lambda d: current_openid(d) == second and bubbles(d) == [])
    send_text(page, "你好")
    wait_for_bubble(page, "user", "你好")
    wait_for_bubble(page, "account", "您可以")
    assert [m.get("content") for m in emulator.shoppers[second].chat if m["from"] == "user"] == ["你好"]
    assert [m.get("content") for m in emulator.shoppers[first].chat if m["from"] == "user"] == ["帮助"]


@pytest.mark.parametrize("label, mode", [("plaintext", "plaintext"), ("compatible", "compatible"),
                                         ("safe (AES)", "safe")])
def test_each_push_mode_still_gets_a_reply(page, emulator, label, mode):
    start = "plaintext" if mode == "safe" else "safe"
    emulator.push_mode = start
    wait(page).until(lambda d: d.find_element(By.ID, "mode").get_attribute("value") == start)
    Select(page.find_element(By.ID, "mode")).select_by_visible_text(label)
    wait(page).until(lambda d: emulator.push_mode == mode, f"the page did not switch the emulator to {mode}")
    send_text(page, f"你好 {mode}")
    wait_for_bubble(page, "user", f"你好 {mode}")
    wait_for_bubble(page, "account", "您可以", via="passive")
    wait(page).until(lambda d: f"delivered ({mode}," in d.find_element(By.ID, "status").text)
    assert page.find_element(By.ID, "mode").get_attribute("value") == mode


def test_pushed_menu_appears_and_store_info_replies_with_the_address(page, app):
    from wx_service.edges.demo_data import STORE, load_demo_data
    from wx_service.ground.extensions import wechat_client

    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        load_demo_data()
    with app.app_context():
        menu = json.loads((REPO_ROOT / "config" / "menu.json").read_text(encoding="utf-8"))
        wechat_client().menu.create(menu)

    wait(page).until(lambda d: "门店信息" in d.find_element(By.ID, "menu").text, "the pushed menu never appeared")
    tops = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#menu > .top > button")]
    assert tops == ["☰ 商场资讯", "门店信息", "人工客服"]
    click_button(page, "#menu button", "门店信息")
    wait_for_bubble(page, "user", "STORE_INFO")
    reply = wait_for_bubble(page, "account", STORE["address"], via="passive")
    assert reply.get_attribute("data-kind") == "text" and STORE["name"] in reply.text

    # A sub-menu opens from its top button, as in WeChat, and its entries answer too.
    click_button(page, "#menu > .top > button", "☰ 商场资讯")
    click_button(page, "#menu .sub button", "近期活动")
    wait_for_bubble(page, "user", "ACTIVITIES")
    wait(page).until(lambda d: any(b.get_attribute("data-kind") == "news" for b in bubbles(d, "account")))
    wait(page).until(lambda d: not any(b.is_displayed() for b in d.find_elements(By.CSS_SELECTOR, "#menu .sub")))

    page.save_screenshot(SCREENSHOT)


def test_scanning_a_counter_code_welcomes_then_follows_up_by_customer_service(page, app, emulator, run_jobs):
    from wx_service.edges.demo_data import QR_CODES, load_demo_data

    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        load_demo_data()
    follow_up = dict((scene, text) for scene, _, text in QR_CODES)["counter-cosmetics-l2"]

    scene = page.find_element(By.ID, "scene")
    scene.clear()
    scene.send_keys("counter-cosmetics-l2")
    page.find_element(By.ID, "scan").click()
    wait_for_bubble(page, "user", "counter-cosmetics-l2")
    wait_for_bubble(page, "account", app.extensions["wx"].settings.WELCOME_TEXT, via="passive")
    wait(page).until(lambda d: "following" in d.find_element(By.CSS_SELECTOR, "#shoppers .shopper.active").text)

    if not hasattr(app.extensions["wx"].queue, "wait_idle"):  # RQ: nothing runs until a worker does
        assert not [b for b in bubbles(page, "account") if b.get_attribute("data-via") == "customer_service"]
    run_jobs()
    follow = wait_for_bubble(page, "account", follow_up, via="customer_service")  # arrives by polling
    assert follow.find_element(By.CSS_SELECTOR, ".via").text == "客服消息"
    assert emulator.calls.get("message/custom/send", 0) == 1


def test_unreachable_webhook_shows_the_unavailable_notice(page, base_url, emulator):
    before = emulator.push_url
    try:
        requests.post(f"{base_url}/_emulator/control/push-url",
                      json={"url": "http://127.0.0.1:9/wechat"}).raise_for_status()
        send_text(page, "帮助")
        wait_for_bubble(page, "user", "帮助")
        notice = wait_for_bubble(page, "system", UNAVAILABLE)
        assert notice.get_attribute("data-kind") == "notice"
        wait(page).until(lambda d: "not delivered" in d.find_element(By.ID, "status").text)
        assert bubbles(page, "account") == []
    finally:
        emulator.push_url = before  # the emulator's reset() keeps the push URL
