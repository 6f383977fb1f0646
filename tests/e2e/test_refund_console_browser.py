"""The refund page in real headless Chromium (issue 12): an agent signs in and is refused
/console/refunds with the reason on the page, while a cashier opens it, picks an order the shopper
paid through the emulated WeChat Pay from today's list, refunds part of it, sees it PROCESSING, and
watches it turn SUCCESS by itself (no reload) when the emulator settles it and WeChat's refund
notification arrives.

With REDIS_URL the refund job runs on a real `flask --app wsgi worker` started for the test (the
embedded queue runs it in-process otherwise).
"""
from __future__ import annotations

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from members import staff as staff_service
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import make_agent, make_plain_staff, make_team
from tests.e2e.test_cashier_page import jobs_running  # noqa: F401,F811 - the fixture: a real worker when the queue is RQ
from tests.e2e.test_console_staff_browser import sign_in_page
from tests.e2e.test_refund_console import paid
from tests.integration.members_helpers import uow
from tests.integration.test_pay_jobs import control, emu_refunds, order_row, refund_row, wait_until

pytestmark = needs_chromium
WAIT = 30


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def refund_state(driver, out_refund_no: str) -> dict | None:
    """The page's figures and the refund's row, read in one script (a redraw replaces the cells)."""
    return driver.execute_script("""
        const row = document.getElementById('refund-' + arguments[0]);
        const text = (id) => document.getElementById(id).textContent.trim();
        if (!row) return null;
        return {status: row.querySelector('.status').textContent.trim(), refunded: text('refunded'),
                left: text('left'), inFlight: text('in-flight'), state: text('order-state'),
                marker: window.notReloaded === true};
    """, out_refund_no)


def test_an_agent_is_refused_while_a_cashier_refunds_and_sees_it_settle(app, base_url, jobs_running):
    make_agent(app, make_team(app), "kefu")
    make_plain_staff(app, "shouyin")
    with uow(app):
        staff_service.grant_role("shouyin", staff_service.CASHIER)
    no = paid(app, base_url, "N-refund-browser", 25_800)
    control(base_url, "config", refund_settle_seconds=3600)  # WeChat settles when the test says so

    with headless_chromium("refunds-agent") as driver:
        sign_in_page(driver, base_url, "kefu")
        assert not driver.find_elements(By.ID, "refunds-link")
        driver.get(f"{base_url}/console/refunds/")
        reason = wait(driver).until(lambda d: d.find_elements(By.ID, "forbidden-reason"))[0].text
        assert "cashier" in reason.lower() and "ask an admin" in reason.lower() and "kefu" in reason
        assert not driver.find_elements(By.ID, "find") and no not in driver.page_source
        driver.get(f"{base_url}/console/refunds/{no}")
        wait(driver).until(lambda d: d.find_elements(By.ID, "forbidden-reason"))
        assert not driver.find_elements(By.ID, "refund-form")

    with headless_chromium("refunds-cashier") as driver:
        sign_in_page(driver, base_url, "shouyin")
        driver.find_element(By.ID, "refunds-link").click()
        wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#today a.pick"))
        driver.find_element(By.LINK_TEXT, no).click()
        wait(driver).until(lambda d: d.find_elements(By.ID, "refund-form"))
        assert driver.find_element(By.ID, "left").text == "258.00"
        driver.find_element(By.ID, "amount").send_keys("58.8")
        driver.find_element(By.ID, "reason").send_keys("颜色不合适")
        driver.find_element(By.ID, "refund-button").click()
        done = wait(driver).until(lambda d: d.find_elements(By.ID, "done"))[0].text
        out_refund_no = done.split("Refund ")[1].split()[0]
        driver.execute_script("window.notReloaded = true;")  # gone if the page were reloaded

        first = refund_state(driver, out_refund_no)
        assert first["status"] == "PROCESSING 退款中" and first["inFlight"] == "58.80", first
        wait_until(lambda: emu_refunds(base_url, no), "the refund job reached WeChat")
        control(base_url, "settle-refund", out_refund_no=out_refund_no)  # the bank is done: REFUND.SUCCESS
        settled = wait(driver).until(lambda d: (lambda s: s if s and s["status"].startswith("SUCCESS") else None)(
            refund_state(d, out_refund_no)), "the refund never turned SUCCESS on the page")
        assert settled == {"status": "SUCCESS 退款成功", "refunded": "58.80", "left": "199.20", "inFlight": "0.00",
                           "state": "PARTIALLY_REFUNDED", "marker": True}
    assert refund_row(app, out_refund_no).amount_fen == 5880
    assert order_row(app, no).state == "PARTIALLY_REFUNDED"
