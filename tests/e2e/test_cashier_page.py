"""The cashier page in real headless Chromium: staff signs in, types an amount, scans a payment
code (the emulator's shopper types the password for 2 s) and watches the steps end in PAID.

With REDIS_URL the flow's jobs run on a real `flask --app wsgi worker` started for the test
(the embedded queue runs them in-process otherwise).
"""
from __future__ import annotations

import os
import signal

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from members import staff as staff_service
from members.models import Staff
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.integration.members_helpers import uow

WAIT = 40  # seconds an explicit wait may take before the test fails (the flow polls every 5 s)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("cashier-page") as driver:
        yield driver


@pytest.fixture
def jobs_running(app, settings):
    """A real worker when the queue is RQ (delayed steps need its scheduler); nothing otherwise."""
    if app.extensions["wx"].settings.JOB_QUEUE != "rq":
        yield
        return
    from tests.integration.test_cashier import _worker

    worker = _worker(settings)
    try:
        yield
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def test_staff_scans_a_code_and_sees_the_steps_end_in_paid(app, base_url, browser, jobs_running):
    with uow(app) as session:
        session.add(Staff(username="till", name="收银员小王"))
        session.flush()
        staff_service.set_password("till", "correct horse battery")
        staff_service.grant_role("till", staff_service.CASHIER)
    browser.get(f"{base_url}/console/cashier/")
    wait(browser).until(lambda d: d.find_elements(By.NAME, "username"))  # sent to sign in first
    browser.find_element(By.NAME, "username").send_keys("till")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery", Keys.ENTER)
    wait(browser).until(lambda d: d.find_elements(By.ID, "auth-code"))
    assert browser.switch_to.active_element.get_attribute("id") == "auth-code"  # autofocus for the scanner

    code = requests.post(f"{base_url}/_emulator/pay/control/payment-code",
                         json={"seconds": 2}, timeout=5).json()["auth_code"]
    browser.find_element(By.ID, "amount").send_keys("12.30", Keys.ENTER)  # Enter moves to the code field
    assert browser.switch_to.active_element.get_attribute("id") == "auth-code"
    browser.switch_to.active_element.send_keys(code, Keys.ENTER)  # what the scanner types

    outcome = wait(browser).until(
        lambda d: (el := d.find_element(By.ID, "outcome")).text and el, "the flow never ended")
    assert "PAID" in outcome.text and "支付成功" in outcome.text
    steps = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#steps li")]
    assert "submitted" in steps[0]
    assert any("USERPAYING" in s for s in steps), steps
    assert any("query 1" in s for s in steps), steps
    assert browser.find_element(By.ID, "order-amount").text == "12.30"
    # Ready for the next shopper: fields cleared, cursor back in the amount field.
    assert browser.find_element(By.ID, "amount").get_attribute("value") == ""
    assert browser.find_element(By.ID, "auth-code").get_attribute("value") == ""
    assert browser.switch_to.active_element.get_attribute("id") == "amount"
    assert code not in browser.page_source
    browser.get("about:blank")
