"""The shopper page's member card panel in headless Chromium: get the card, fill in the activation
form, and see points and level on the card face."""
from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.e2e.test_shopper_page import browser, page, pytestmark, wait, wait_for_bubble  # noqa: F401
from wx_service.edges.cli.members import push_card

__all__ = ["pytestmark"]


def test_card_panel_claims_activates_and_shows_the_card_face(page, app, emulator, run_jobs):
    with app.app_context():
        push_card()
    page.find_element(By.ID, "follow").click()
    wait_for_bubble(page, "user", "[subscribe]")
    page.find_element(By.ID, "get-card").click()
    wait_for_bubble(page, "user", "领取会员卡")
    wait(page).until(lambda d: emulator.card_codes, "no card was issued")
    for field, value in (("card-name", "李雷"), ("card-phone", "13900000001")):
        page.find_element(By.ID, field).send_keys(value)
    page.execute_script("document.getElementById('card-birthday').value = '1992-03-04'")
    page.find_element(By.ID, "card-submit").click()
    wait_for_bubble(page, "user", "提交会员卡激活资料")
    run_jobs()
    [code] = list(emulator.card_codes)
    wait(page).until(lambda d: emulator.card_codes[code]["has_active"], "the card was not activated")
    page.find_element(By.ID, "view-card").click()
    face = wait(page).until(lambda d: (e := d.find_element(By.ID, "card-face")).is_displayed() and e.text)
    assert code in face and "积分 0" in face and "银卡会员" in face
