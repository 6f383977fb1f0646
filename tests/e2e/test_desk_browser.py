"""The desk in real headless Chromium (issue 10): two agents of one team, both online, each in
their own browser; a shopper (the emulator's) asks for a person. Agent A is offered it and lets
the offer lapse; the sweep gives it to B, who accepts, answers and resolves; the shopper sees the
answer, gets the rating menu and taps a score. A's inbox, never reloaded, follows it all live.
Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped otherwise). Every wait is explicit.
"""
from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from service_desk import jobs
from service_desk.models import Conversation
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import (
    PASSWORD,
    conversation_of,
    customer_service_messages,
    first_openid,
    make_agent,
    make_team,
    shopper,
)
from tests.integration.members_helpers import uow

WAIT = 20
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def two_browsers():
    args = ("--disable-background-timer-throttling", "--disable-renderer-backgrounding")
    with headless_chromium("desk-a", extra_args=args) as a, headless_chromium("desk-b", extra_args=args) as b:
        yield a, b


@pytest.fixture
def browsers(two_browsers):
    yield two_browsers
    for driver in two_browsers:
        driver.get("about:blank")  # closes the EventSource before the next test empties the tables
        driver.delete_all_cookies()


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def open_desk(driver, base_url: str, username: str) -> None:
    driver.get(f"{base_url}/console/login?next=/console/desk")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "live").get_attribute("class") == "live")
    driver.execute_script("window.__notReloaded = true;")


def row(driver, conversation_id: int):
    found = driver.find_elements(By.CSS_SELECTOR, f"#conversations li[data-id='{conversation_id}']")
    return found[0] if found else None


def click_row(driver, conversation_id: int) -> None:
    """Click the conversation's row; the list is redrawn on every event, so retry a stale one."""
    def clicked(d) -> bool:
        found = row(d, conversation_id)
        if found is None:
            return False
        found.click()
        return True
    wait(driver).until(clicked)


def row_class(driver, conversation_id: int) -> str:
    found = row(driver, conversation_id)
    return (found.get_attribute("class") or "") if found is not None else ""


def tab(driver, view: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f".tab[data-view='{view}']").click()


def test_offer_lapses_to_b_who_answers_and_resolves_while_as_inbox_follows_live(browsers, app, base_url, emulator,
                                                                                run_jobs):
    a, b = browsers
    team = make_team(app)
    make_agent(app, team, "ana")
    make_agent(app, team, "bo")
    open_desk(a, base_url, "ana")
    open_desk(b, base_url, "bo")
    client, openid = shopper(emulator, base_url), first_openid(emulator)
    client.subscribe(openid)

    # The shopper asks for a person: ana (first in line) is offered it, live.
    assert client.text(openid, "人工")["delivered"]
    conversation_id = conversation_of(app, openid).id
    wait(a).until(lambda d: "offered-to-me" in row_class(d, conversation_id))
    assert wait(a).until(lambda d: d.find_element(By.ID, "count-queue").text == "1")
    click_row(a, conversation_id)
    wait(a).until(lambda d: d.find_element(By.ID, "offer").is_displayed())
    assert "s left" in a.find_element(By.ID, "offer-countdown").text
    assert a.find_element(By.ID, "accept").is_displayed()
    assert a.find_element(By.ID, "window").get_attribute("data-open") == "true"
    assert row(b, conversation_id) is None  # offered to ana, not in bo's queue

    # Ana does not accept; the sweep (offer timeout 0) moves it on to bo.
    with uow(app):
        assert jobs.sweep_offers(seconds=0) == 1
    assert conversation_of(app, openid).status == "offered"
    wait(a).until(lambda d: row(d, conversation_id) is None)  # gone from ana's queue, no reload
    wait(a).until(lambda d: not d.find_element(By.ID, "offer").is_displayed())
    assert a.find_element(By.ID, "count-mine").text == "0"

    # Bo accepts and answers.
    click_row(b, conversation_id)
    wait(b).until(lambda d: (e := d.find_element(By.ID, "accept")).is_displayed() and e).click()
    wait(b).until(lambda d: d.find_element(By.ID, "reply-box").is_displayed())
    assert b.find_element(By.ID, "conv-status").text == "assigned"
    b.find_element(By.ID, "reply").send_keys("您好，我是客服小博，请问有什么可以帮您？")
    b.find_element(By.ID, "send").click()
    wait(b).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out"))
    run_jobs()
    assert [m.get("content") for m in customer_service_messages(emulator, openid)] == [
        "您好，我是客服小博，请问有什么可以帮您？"]
    wait(b).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out.status-sent"))

    tab(a, "open")  # ana sees who holds it now
    wait(a).until(lambda d: (r := row(d, conversation_id)) is not None and r.get_attribute("data-status") == "assigned"
                  and "Bo" in r.text)

    # Bo resolves; the shopper gets the rating menu and taps 5.
    b.find_element(By.ID, "resolve").click()
    wait(b).until(lambda d: d.find_element(By.ID, "conv-status").text == "resolved")
    wait(a).until(lambda d: row(d, conversation_id) is None)  # no longer open, live
    run_jobs()
    menu = customer_service_messages(emulator, openid)[-1]
    assert menu["kind"] == "msgmenu"
    five = next(item for item in menu["list"] if item["id"].endswith(":5"))
    tap = client._common(openid, "text") + [("Content", five["content"]), ("MsgId", emulator.next_msg_id()),
                                              ("bizmsgmenuid", five["id"])]
    assert client.deliver(openid, tap)["delivered"]
    with uow(app) as session:
        assert session.scalar(select(Conversation.csat).where(Conversation.id == conversation_id)) == 5

    tab(a, "resolved")
    wait(a).until(lambda d: (r := row(d, conversation_id)) is not None and r.get_attribute("data-status") == "resolved")
    assert a.execute_script("return window.__notReloaded === true;")
    assert b.execute_script("return window.__notReloaded === true;")


def test_a_shut_window_says_why_and_a_refused_answer_shows_wechats_words_and_retries(browsers, app, base_url,
                                                                                   emulator, run_jobs):
    from wx_service.edges.emulator.state import Fault

    a, _ = browsers
    team = make_team(app)
    make_agent(app, team, "ana")
    open_desk(a, base_url, "ana")
    client, openid = shopper(emulator, base_url), first_openid(emulator)
    client.subscribe(openid)
    client.text(openid, "人工")
    conversation_id = conversation_of(app, openid).id
    click_row(a, conversation_id)
    wait(a).until(lambda d: (e := d.find_element(By.ID, "accept")).is_displayed() and e).click()
    wait(a).until(lambda d: d.find_element(By.ID, "reply-box").is_displayed())

    emulator.faults.append(Fault(api="message/custom/send", errcode=45047, errmsg="out of response count limit"))
    a.find_element(By.ID, "reply").send_keys("稍等")
    a.find_element(By.ID, "send").click()
    wait(a).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out"))
    run_jobs()
    wait(a).until(lambda d: any("45047" in f.text and "out of response count limit" in f.text
                                for f in d.find_elements(By.CSS_SELECTOR, "#thread .item.status-failed")))
    wait(a).until(lambda d: d.find_element(By.CSS_SELECTOR, "#thread .item.status-failed button.retry").click() or True)
    wait(a).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out.status-pending")
                  or d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out.status-sent"))
    run_jobs()
    wait(a).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .item.dir-out.status-sent"))

    # The shopper unfollows: WeChat's window is shut, and the reply box says why.
    client.unsubscribe(openid)
    tab(a, "mine")
    click_row(a, conversation_id)
    wait(a).until(lambda d: d.find_element(By.ID, "window").get_attribute("data-open") == "false")
    assert "unfollowed" in a.find_element(By.ID, "reply-closed").text
    assert not a.find_element(By.ID, "send").is_enabled()
    assert a.find_element(By.ID, "send-template").is_displayed()  # the configured template is offered instead


def test_staff_edit_the_faq_and_canned_replies_in_their_pages(browsers, app, base_url):
    a, _ = browsers
    make_agent(app, make_team(app), "ana")
    open_desk(a, base_url, "ana")

    a.get(f"{base_url}/console/desk/faq")
    add = a.find_element(By.ID, "faq-add").find_element(By.XPATH, "./ancestor::tr")
    add.find_element(By.CSS_SELECTOR, ".f-question").send_keys("停车怎么收费")
    add.find_element(By.CSS_SELECTOR, ".f-pattern").send_keys("停车(")
    add.find_element(By.CSS_SELECTOR, ".f-regex").click()
    add.find_element(By.CSS_SELECTOR, ".f-answer").send_keys("B2 停车场")
    a.find_element(By.ID, "faq-add").click()
    wait(a).until(lambda d: "regular expression" in d.find_element(By.ID, "error").text)  # the server's words
    add.find_element(By.CSS_SELECTOR, ".f-regex").click()  # plain keywords instead
    add.find_element(By.CSS_SELECTOR, ".f-pattern").clear()
    add.find_element(By.CSS_SELECTOR, ".f-pattern").send_keys("停车|车位")
    a.find_element(By.ID, "faq-add").click()
    saved = ".faq-row:not(#faq-new)"
    wait(a).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, saved)) == 1)  # reloaded with what was kept
    assert a.find_element(By.CSS_SELECTOR, f"{saved} .f-pattern").get_attribute("value") == "停车|车位"

    a.get(f"{base_url}/console/desk/canned")
    add = a.find_element(By.ID, "canned-add").find_element(By.XPATH, "./ancestor::tr")
    add.find_element(By.CSS_SELECTOR, ".c-shortcut").send_keys("/hi")
    add.find_element(By.CSS_SELECTOR, ".c-body").send_keys("您好，很高兴为您服务")
    a.find_element(By.ID, "canned-add").click()
    saved = ".canned-row:not(#canned-new)"
    wait(a).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, saved)) == 1)
    assert a.find_element(By.CSS_SELECTOR, f"{saved} .c-shortcut").get_attribute("value") == "/hi"
    a.find_element(By.CSS_SELECTOR, f"{saved} .c-delete").click()
    wait(a).until(lambda d: not d.find_elements(By.CSS_SELECTOR, saved))
