"""The counter's reservation day page in real headless Chromium (issue 11): a counter's staff member
has today's board open; a shopper books (another request, another database connection, the event
through Redis pub/sub) and the board shows the arrival without a reload; staff type the visit code
into the scan field as a keyboard-wedge scanner would, and the arrival shows checked in; the
"take payment" link opens the till with the reservation attached. A booking at another counter
never appears. Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped otherwise). Every wait
is explicit.
"""
from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD
from tests.e2e.test_reservation_console import (
    X,
    book_today,
    booking_row,
    staff,
    two_counters,
)
from tests.integration.members_helpers import make_member

WAIT = 20
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    args = ("--disable-background-timer-throttling", "--disable-renderer-backgrounding")
    with headless_chromium("reservation-console", extra_args=args) as driver:
        yield driver


@pytest.fixture
def driver(browser):
    yield browser
    browser.get("about:blank")  # closes the EventSource before the next test empties the tables
    browser.delete_all_cookies()


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def arrival_status(driver, booking_id: int) -> str | None:
    found = driver.find_elements(By.ID, f"arrival-{booking_id}")
    return found[0].get_attribute("data-status") if found else None


def test_a_booking_appears_live_and_the_scanned_code_checks_it_in(driver, app, base_url):
    made = two_counters(app)
    staff(app, "mei", "counter", X)
    driver.get(f"{base_url}/console/login?next=/console/reservations/day?counter={X}")
    driver.find_element(By.ID, "username").send_keys("mei")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "live").get_attribute("class") == "live")
    assert driver.find_elements(By.CSS_SELECTOR, "#arrivals tr[id^='arrival-']") == []
    driver.execute_script("window.__notReloaded = true;")

    # A shopper books at this counter, and another at counter Y, each in its own transaction.
    member = make_member(app, name="王女士")
    booking = book_today(app, made["sx"], member_id=member)
    elsewhere = book_today(app, made["sy"], openid="oShopperAtDior0000000000001", key="y-1")
    wait(driver).until(lambda d: arrival_status(d, booking.id) == "booked")
    # Read inside a wait: the board may be redrawn once more (each event re-reads it), and an
    # element of the old drawing is stale.
    row = wait(driver).until(lambda d: d.find_element(By.ID, f"arrival-{booking.id}").text)
    assert "王**" in row and booking.visit_code in row and "肌肤测试" in row
    assert driver.find_elements(By.CSS_SELECTOR, f"#day-grid [data-booking='{booking.id}']")
    assert arrival_status(driver, elsewhere.id) is None

    # The scanner types the code and Enter.
    scan = driver.find_element(By.ID, "scan")
    scan.send_keys(booking.visit_code + Keys.ENTER)
    wait(driver).until(lambda d: arrival_status(d, booking.id) == "checked_in")
    result = driver.find_element(By.ID, "scan-result").text
    assert "checked in" in result and "王**" in result and booking.visit_code in result
    assert booking_row(app, booking.id).status == "checked_in"
    assert driver.switch_to.active_element == driver.find_element(By.ID, "scan")  # ready for the next shopper

    # Scanned twice: harmless, and said so.
    driver.find_element(By.ID, "scan").send_keys(booking.visit_code + Keys.ENTER)
    wait(driver).until(lambda d: d.find_element(By.ID, "scan-result").text.startswith("Already"))
    assert driver.execute_script("return window.__notReloaded === true;")

    # Take payment: the till opens with the reservation attached.
    driver.find_element(By.ID, "scan-pay").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "reservation-code"))
    assert driver.find_element(By.ID, "reservation-code").text == booking.visit_code
    assert driver.find_element(By.ID, "counter-name").text == X
