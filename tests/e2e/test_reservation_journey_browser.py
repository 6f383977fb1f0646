"""Issue 11's whole journey in real headless Chromium, one browser, three tabs, nothing called by
hand in between:

1. the counter's staff member has today's reservation board open;
2. the shopper, on the OA's H5 pages (signed in through the emulated web authorization), picks a
   service and one of today's times and books it;
3. the board shows the arrival without a reload (Redis pub/sub → SSE);
4. staff type the shopper's visit code into the scan field (a keyboard-wedge scanner): checked in;
5. "take payment" opens the till with the reservation attached; staff make a QR for 88.00;
6. the shopper's phone (the emulator's shopper page) pays the QR; the till turns 已支付 by itself;
7. the order carries the reservation (its `source`) and the booking carries the order.

Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped otherwise). Every wait is explicit.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from payments.models import Order
from reservations import slots
from reservations.models import Booking, Service
from tests.e2e.browser import headless_chromium, needs_chromium, pick_open_order
from tests.e2e.desk_helpers import PASSWORD
from tests.e2e.test_h5_pay import shopper
from tests.e2e.test_reservation_console import staff
from tests.integration.reservation_helpers import service as make_service
from tests.integration.reservation_helpers import uow
from wx_service.ground.db import utcnow

WAIT = 20
COUNTER = "LANCOME"
pytestmark = needs_chromium


@pytest.fixture
def driver():
    args = ("--disable-background-timer-throttling", "--disable-renderer-backgrounding")
    with headless_chromium("reservation-journey", extra_args=args) as browser:
        yield browser


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def todays_next_start(app, service_id: int):
    """The first start time of today (store time) at least two minutes from now, or a skip in the
    day's last minutes, when no time of today is left to book and check in."""
    now = utcnow()
    with uow(app) as session:
        made = session.get(Service, service_id)
        day = slots.store_day(now)
        for start in slots.starts_between(made, day, day, slots.hours_for(COUNTER, [day])):
            if start >= now + timedelta(minutes=2):
                return start
    pytest.skip("the store day is nearly over: no time of today left to book and check in")


def test_a_shopper_books_on_the_phone_checks_in_at_the_counter_and_pays_there(driver, app, base_url, emulator):
    service_id, _resource = make_service(app, capacity=2, counter=COUNTER, duration=10, buffer=0, lead=0)
    staff(app, "mei", "counter", COUNTER)
    buyer = shopper(emulator)  # the emulated OAuth and the shopper page both act as the first shopper
    start = todays_next_start(app, service_id)
    wanted = start.astimezone(slots.STORE_ZONE).isoformat(timespec="seconds")

    # 1. The counter's board, live.
    driver.get(f"{base_url}/console/login?next=/console/reservations/day?counter={COUNTER}")
    driver.find_element(By.ID, "username").send_keys("mei")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "live").get_attribute("class") == "live")
    assert driver.find_elements(By.CSS_SELECTOR, "#arrivals tr[id^='arrival-']") == []
    driver.execute_script("window.__notReloaded = true;")
    board = driver.current_window_handle

    # 2. The shopper books on the OA's pages.
    driver.switch_to.new_window("tab")
    phone = driver.current_window_handle
    driver.get(f"{base_url}/h5/reservations")
    wait(driver).until(lambda d: d.find_elements(By.ID, f"service-{service_id}"))
    driver.find_element(By.ID, f"service-{service_id}").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "slots"))
    day = slots.store_day(start).isoformat()
    if driver.find_element(By.ID, "slots").get_attribute("data-day") != day:
        driver.find_element(By.CSS_SELECTOR, f".days a[data-day='{day}']").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "slots").get_attribute("data-day") == day)
    driver.find_element(By.CSS_SELECTOR, f"li[data-starts-at='{wanted}'] button.book").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "done"))
    assert "预约成功" in text_of(driver, "done")
    with uow(app) as session:
        booking = session.scalar(select(Booking))
        session.expunge(booking)
    assert (booking.openid, booking.channel, booking.starts_at, booking.status) == (buyer.openid, "h5", start, "booked")
    assert booking.visit_code in driver.find_element(By.ID, f"booking-{booking.id}").text

    # 3. The board shows the arrival by itself.
    driver.switch_to.window(board)
    # Read inside a wait: each event redraws the board, and an element of an old drawing is stale.
    status, row = wait(driver).until(lambda d: (e := d.find_element(By.ID, f"arrival-{booking.id}"))
                                     and (e.get_attribute("data-status"), e.text))
    assert status == "booked" and booking.visit_code in row
    assert driver.execute_script("return window.__notReloaded === true;")

    # 4. The scanner types the visit code.
    driver.find_element(By.ID, "scan").send_keys(booking.visit_code + Keys.ENTER)
    wait(driver).until(lambda d: d.find_element(By.ID, f"arrival-{booking.id}").get_attribute("data-status")
                       == "checked_in")
    assert "checked in" in text_of(driver, "scan-result")

    # 5. Take payment at this counter.
    driver.find_element(By.ID, "scan-pay").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "reservation-code"))
    assert text_of(driver, "reservation-code") == booking.visit_code
    driver.find_element(By.ID, "amount").send_keys("88.00")
    driver.find_element(By.ID, "create").click()
    code_url = wait(driver).until(lambda d: (t := text_of(d, "code-url")).startswith("weixin://") and t)
    till = driver.current_window_handle

    # 6. The shopper pays it from the phone.
    driver.switch_to.window(phone)
    driver.get(f"{base_url}/_emulator/")
    pick_open_order(driver, code_url)
    driver.find_element(By.ID, "pay-scan").click()
    wait(driver).until(lambda d: "支付成功" in text_of(d, "pay-result"))
    driver.switch_to.window(till)
    wait(driver).until(lambda d: "已支付" in text_of(d, "banner"))

    # 7. The order carries the reservation, and the reservation the order.
    with uow(app) as session:
        order = session.scalar(select(Order))
        paid = session.get(Booking, booking.id)
        assert (order.state, order.amount_fen, order.counter) == ("PAID", 8800, COUNTER)
        assert order.source == f"reservation:{booking.visit_code}"
        assert (paid.status, paid.out_trade_no) == ("checked_in", order.out_trade_no)
