"""The counter page and the shopper's Pay panel in a real (headless) Chromium.

Staff sign in, make a 128.00 yuan QR; in another tab the emulator's shopper page picks that
code_url and pays it; the counter page, never reloaded, turns to 已支付 by its own polling.
Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped otherwise). Every wait is explicit.
"""
from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from members import staff as staff_service
from tests.e2e.browser import headless_chromium, needs_chromium, pick_open_order
from tests.integration.members_helpers import balance, make_member, make_staff, uow

WAIT = 20
PASSWORD = "till-pass-1234"

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("counter-page", extra_args=('--disable-background-timer-throttling',)) as driver:
        yield driver


@pytest.fixture
def driver(browser):
    yield browser
    for handle in browser.window_handles[1:]:  # close the extra tabs, stop every page polling
        browser.switch_to.window(handle)
        browser.close()
    browser.switch_to.window(browser.window_handles[0])
    browser.delete_all_cookies()
    browser.get("about:blank")


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def sign_in(driver, base_url: str, app) -> None:
    make_staff(app, "mei")
    with uow(app):
        staff_service.set_password("mei", PASSWORD)
        staff_service.grant_role("mei", staff_service.CASHIER)
    driver.get(f"{base_url}/console/login")
    driver.find_element(By.ID, "username").send_keys("mei")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(lambda d: "欢迎" in d.page_source)


def open_shopper_page(driver, base_url: str) -> None:
    driver.switch_to.new_window("tab")
    driver.get(f"{base_url}/_emulator/")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#shoppers .shopper.active")) == 1)


def test_staff_make_a_qr_the_shopper_pays_it_and_the_page_turns_paid_by_itself(driver, app, base_url, emulator):
    shopper_openid = next(iter(emulator.shoppers))  # the page's first shopper, selected by default
    member_id = make_member(app, oa_openid=shopper_openid)
    sign_in(driver, base_url, app)
    driver.get(f"{base_url}/console/counter/?counter=1F-cosmetics")
    assert text_of(driver, "counter-name") == "1F-cosmetics"
    driver.find_element(By.ID, "amount").send_keys("128.00")
    driver.find_element(By.ID, "description").send_keys("口红")
    driver.find_element(By.ID, "create").click()
    code_url = wait(driver).until(lambda d: (t := text_of(d, "code-url")).startswith("weixin://") and t)
    assert text_of(driver, "current-amount") == "¥128.00"
    assert re.search(r"\d+:\d\d", text_of(driver, "countdown"))
    wait(driver).until(lambda d: d.execute_script(
        "const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 100;"))
    assert not driver.find_element(By.ID, "banner").is_displayed()
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recent tr"))
    driver.execute_script("window.__notReloaded = true;")
    counter_tab = driver.current_window_handle

    open_shopper_page(driver, base_url)
    pick_open_order(driver, code_url)
    assert driver.find_element(By.ID, "pay-code-url").get_attribute("value") == code_url
    driver.find_element(By.ID, "pay-scan").click()
    wait(driver).until(lambda d: "支付成功" in text_of(d, "pay-result"))
    assert "128.00" in text_of(driver, "pay-result")

    driver.switch_to.window(counter_tab)
    wait(driver).until(lambda d: "已支付" in text_of(d, "banner"))
    assert driver.execute_script("return window.__notReloaded === true;")
    assert text_of(driver, "state") == "PAID"
    assert not driver.find_element(By.ID, "qr").is_displayed()
    payer = text_of(driver, "payer")
    assert "积分" in payer and shopper_openid not in payer and shopper_openid[:4] in payer
    assert f"+{balance(app, member_id)} 积分" in payer
    wait(driver).until(lambda d: "PAID" in d.find_element(By.ID, "recent").text)


def test_staff_cancel_a_qr_and_a_bad_amount_is_explained(driver, app, base_url):
    sign_in(driver, base_url, app)
    driver.get(f"{base_url}/console/counter/?counter=2F-shoes")
    amount = driver.find_element(By.ID, "amount")
    amount.send_keys("12.345")
    driver.find_element(By.ID, "create").click()
    wait(driver).until(lambda d: "at most 2 decimals" in text_of(d, "error"))
    assert not driver.find_element(By.ID, "current").is_displayed()
    amount.clear()
    amount.send_keys("9.90")
    driver.find_element(By.ID, "create").click()
    wait(driver).until(lambda d: text_of(d, "code-url").startswith("weixin://"))
    driver.find_element(By.ID, "cancel").click()
    wait(driver).until(lambda d: "已关闭" in text_of(d, "banner"))
    assert text_of(driver, "state") == "CLOSED" and not driver.find_element(By.ID, "cancel").is_displayed()


def test_the_shopper_shows_a_payment_code(driver, base_url, emulator):
    open_shopper_page(driver, base_url)
    Select(driver.find_element(By.ID, "pay-open-orders"))  # the panel is there
    seconds = driver.find_element(By.ID, "paycode-seconds")
    seconds.clear()
    seconds.send_keys("5")
    Select(driver.find_element(By.ID, "paycode-outcome")).select_by_value("give_up")
    driver.find_element(By.ID, "paycode-show").click()
    code = wait(driver).until(lambda d: (e := d.find_element(By.ID, "paycode")).is_displayed()
                              and e.get_attribute("data-code"))
    assert re.fullmatch(r"1[0-5]\d{16}", code)
    assert text_of(driver, "paycode").replace(" ", "") == code
    held = emulator.pay.codes[code]
    assert (held["openid"], held["seconds"], held["outcome"]) == (next(iter(emulator.shoppers)), 5.0, "give_up")
