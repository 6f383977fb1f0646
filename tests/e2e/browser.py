"""Headless Chromium for the page tests: one way to start it, one skip reason when it is missing."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=f"needs headless Chromium: apt-get install chromium chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")


@contextlib.contextmanager
def headless_chromium(name: str, *, window: str = "1280,900", extra_args: tuple[str, ...] = ()) -> Iterator:
    """A Chromium driver with a throw-away profile, quit and cleaned up on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix=f"{name}-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--window-size={window}", f"--user-data-dir={profile}", *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def pick_open_order(driver, code_url: str, timeout: float = 20) -> None:
    """Choose the open order `code_url` in the emulator's pay panel. The panel redraws its list
    every few seconds, so finding the option and choosing it happen in one script in the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    chosen = """
const select = document.getElementById('pay-open-orders');
if (![...select.options].some(o => o.value === arguments[0])) return false;
select.value = arguments[0];
select.dispatchEvent(new Event('change'));
return document.getElementById('pay-code-url').value === arguments[0];
"""
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(chosen, code_url),
                                         f"the open order {code_url} never showed in the pay panel")
