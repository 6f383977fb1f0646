"""The console's brand-news page in real headless Chromium (issue 12): marketing staff announce a
new arrival from the form, and the page (which refreshes itself) shows its progress until it is
done, with the message counted as sent and the shopper's chat holding it; an analyst reads the
same page without the form. Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped otherwise)."""
from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD
from tests.e2e.test_reservation_console import staff
from tests.integration.brand_news_helpers import arrival, brand, brand_news, follower, subscribe

WAIT = 20
pytestmark = needs_chromium

ROWS = """return Array.from(document.querySelectorAll('#announcements tbody tr[data-id]')).map(tr => ({
  id: tr.dataset.id, state: tr.dataset.state, chunks: tr.querySelector('.chunks').textContent,
  sent: tr.querySelector('[data-outcome="sent"]').textContent}));"""


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("announcements-console") as driver:
        yield driver


@pytest.fixture
def driver(browser):
    yield browser
    browser.get("about:blank")
    browser.delete_all_cookies()


def wait(driver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def sign_in(driver, base_url: str, username: str) -> None:
    driver.get(f"{base_url}/console/login?next=/console/announcements")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "announcements"))


def test_marketing_announces_and_the_page_shows_it_done(driver, app, base_url, emulator, run_jobs):
    lancome = brand(app)
    mei = follower(app, emulator, 0)
    subscribe(app, mei, lancome)
    item = arrival(app, lancome, "小黑瓶")
    staff(app, "lin", "marketing")
    sign_in(driver, base_url, "lin")
    driver.find_element(By.ID, "announce-item").send_keys(str(item))
    driver.find_element(By.ID, "announce-button").click()
    wait(driver).until(lambda d: d.execute_script(ROWS))  # announced: its row is drawn
    run_jobs()  # the chunk job (a worker's, under RQ)
    # Read the rows in one script inside the wait: each refresh redraws the table.
    done = wait(driver).until(lambda d: [r for r in d.execute_script(ROWS) if r["state"] == "done"])
    assert [(r["chunks"], r["sent"]) for r in done] == [("1/1", "1")]
    assert [line["data"]["keyword2"]["value"] for line in brand_news(emulator, mei)] == ["小黑瓶"]
    driver.find_element(By.ID, "announce-item").clear()
    driver.find_element(By.ID, "announce-item").send_keys(str(item))
    driver.find_element(By.ID, "announce-button").click()
    wait(driver).until(lambda d: "announced already" in d.find_element(By.ID, "error").text)


def test_an_analyst_reads_the_page_without_the_form(driver, app, base_url):
    staff(app, "zhao", "analyst")
    sign_in(driver, base_url, "zhao")
    assert driver.find_elements(By.ID, "announce-form") == []
    assert driver.find_element(By.ID, "none").text == "Nothing announced yet."
