"""Goods holds on the OA's reservation pages, over HTTP and in real headless Chromium: the shopper
sees the holdable goods by counter and brand with how many are free, picks a visit day (today to
holds.MAX_DAYS_AHEAD days ahead) and taps 保留; the hold (once, however often the form is posted)
shows under "my reservations" with its visit QR. Forms need the session's CSRF token; a sold-out
item, a day out of range or an unknown item shows why and changes nothing; someone else's hold is
a 404.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote, urlsplit

import pytest
import requests
from sqlalchemy import select

from reservations import holds, slots
from reservations.models import GoodsHold, HoldableVariant
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.test_h5_pay import shopper, sign_in
from tests.e2e.test_h5_reservations import PAGES, TIMEOUT, forms, page, post, quiet, rows
from tests.fuzz.harness import Harness
from tests.integration.members_helpers import make_member
from tests.integration.reservation_helpers import held, uow
from wx_service.ground.db import utcnow
from wx_service.ground.qr_images import qr_png_bytes

GOODS = f"{PAGES}/goods"


def goods(app, *items: tuple[str, str, str, str, int]) -> list[int]:
    """Holdable variants (counter, brand, product, variant, holdable); their ids in order."""
    with uow(app) as session:
        made = [HoldableVariant(counter_code=c, brand=b, product=p, variant=v, holdable=n, held=0)
                for c, b, p, v, n in items]
        session.add_all(made)
        session.flush()
        return [m.id for m in made]


def lipstick(app, holdable: int = 2) -> int:
    [made] = goods(app, ("DIOR", "迪奥", "烈艳蓝金唇膏", "999 哑光", holdable))
    return made


def today() -> date:
    return slots.store_day(utcnow())


def hold_form(text: str, variant_id: int) -> dict[str, str]:
    """The variant's hold form as the browser would send it: its hidden fields and the picked day."""
    form = next(f for f in forms(text) if f.get("variant_id") == str(variant_id) and f["action"] == PAGES + "/hold")
    row = re.search(rf'id="variant-{variant_id}".*?</form>', text, re.S).group(0)
    return form | {"visit_day": re.search(r'<option value="([\d-]+)" selected>', row).group(1)}


def holds_in_db(app) -> list[GoodsHold]:
    with uow(app) as session:
        return list(session.scalars(select(GoodsHold).order_by(GoodsHold.id)))


def signed_in(base_url: str, emulator, index: int = 0) -> requests.Session:
    return sign_in(base_url, shopper(emulator, index).openid, GOODS)


# -- over HTTP -------------------------------------------------------------------------------------

def test_the_goods_page_groups_by_counter_and_brand_with_whats_free_and_a_visit_day_picker(app, base_url, emulator):
    blue, red, gone = goods(app, ("LANCOME", "兰蔻", "小黑瓶精华", "50ml", 3), ("DIOR", "迪奥", "烈艳蓝金唇膏", "999", 2),
                            ("DIOR", "迪奥", "烈艳蓝金唇膏", "720", 0))
    signed_out = requests.get(base_url + GOODS, allow_redirects=False, timeout=TIMEOUT)
    assert signed_out.status_code == 302 and urlsplit(signed_out.headers["Location"]).path == "/h5/oauth/start"
    http = signed_in(base_url, emulator)
    assert f'href="{GOODS}"' in page(base_url, http, PAGES).text  # the services page leads here

    text = page(base_url, http, GOODS).text
    counters = re.findall(r'<section class="counter" data-counter="(\w+)">', text)
    assert counters == ["DIOR", "LANCOME"]
    assert "兰蔻" in text and "迪奥" in text and "小黑瓶精华 · 50ml" in text
    assert re.search(rf'id="variant-{blue}"[^>]*data-available="3"', text)
    assert re.search(rf'id="variant-{red}"[^>]*data-available="2"', text) and "可保留 2 件" in text
    assert re.search(rf'id="variant-{gone}"[^>]*data-available="0"', text) and "已被保留完" in text
    assert {f["variant_id"] for f in forms(text)} == {str(blue), str(red)}  # no hold button on what is gone
    form = hold_form(text, blue)
    assert form["csrf"] and form["key"] and form["key"] != hold_form(text, red)["key"]
    picker = re.search(rf'id="variant-{blue}".*?<select name="visit_day"[^>]*>(.*?)</select>', text, re.S).group(1)
    offered = re.findall(r'<option value="([\d-]+)"', picker)
    assert offered == [(today() + timedelta(days=n)).isoformat() for n in range(holds.MAX_DAYS_AHEAD + 1)]
    assert re.search(rf'<option value="{today().isoformat()}" selected>', picker)


def test_a_shopper_holds_once_under_a_double_post_and_sees_it_with_its_qr(app, base_url, emulator):
    variant = lipstick(app, holdable=2)
    buyer = shopper(emulator)
    member_id = make_member(app, oa_openid=buyer.openid)
    http = signed_in(base_url, emulator)
    form = hold_form(page(base_url, http, GOODS).text, variant)
    day = (today() + timedelta(days=3)).isoformat()

    first, double_tap = post(base_url, http, form, visit_day=day), post(base_url, http, form, visit_day=day)
    assert first.status_code == double_tap.status_code == 303
    assert first.headers["Location"] == double_tap.headers["Location"]  # the same hold, twice
    quiet(app)
    [made] = holds_in_db(app)
    assert (made.variant_id, made.openid, made.member_id, made.visit_day.isoformat(), made.status) == (
        variant, buyer.openid, member_id, day, "held")
    assert made.visit_code.startswith("H") and held(app, variant) == 1
    assert first.headers["Location"].endswith(f"{PAGES}/mine?done=held#hold-{made.id}")

    mine = page(base_url, http, f"{PAGES}/mine?done=held").text
    assert "保留成功" in mine and f'id="hold-{made.id}"' in mine and made.visit_code in mine
    assert f"到店日 {day}" in mine and "烈艳蓝金唇膏" in mine
    assert f'src="{PAGES}/holds/{made.id}/qr.png"' in mine
    qr = http.get(f"{base_url}{PAGES}/holds/{made.id}/qr.png", timeout=TIMEOUT)
    assert qr.headers["Content-Type"] == "image/png" and qr.content == qr_png_bytes(made.visit_code)
    assert re.search(rf'id="variant-{variant}"[^>]*data-available="1"', page(base_url, http, GOODS).text)


def test_holding_needs_the_sessions_csrf_token_and_a_signed_in_shopper(app, base_url, emulator):
    variant = lipstick(app)
    http = signed_in(base_url, emulator)
    form = hold_form(page(base_url, http, GOODS).text, variant)
    before = rows(app)
    for csrf in ("", "forged", form["csrf"] + "x"):
        refused = post(base_url, http, form, csrf=csrf)
        assert refused.status_code == 403 and "expired" in refused.text
    signed_out = post(base_url, requests.Session(), form)
    assert signed_out.status_code == 302 and urlsplit(signed_out.headers["Location"]).path == "/h5/oauth/start"
    assert rows(app) == before and held(app, variant) == 0


def test_a_sold_out_item_shows_why_and_changes_nothing(app, base_url, emulator):
    variant = lipstick(app, holdable=1)
    alice, bob = signed_in(base_url, emulator, 0), signed_in(base_url, emulator, 1)
    alices, bobs = (hold_form(page(base_url, s, GOODS).text, variant) for s in (alice, bob))  # both see one left
    assert post(base_url, alice, alices).status_code == 303
    quiet(app)
    before = rows(app)
    late = post(base_url, bob, bobs)
    assert late.status_code == 409 and 'id="problem"' in late.text
    assert "every unit of this item is held" in late.text
    assert re.search(rf'id="variant-{variant}"[^>]*data-available="0"', late.text)  # the goods, redrawn
    assert rows(app) == before and held(app, variant) == 1
    assert [h.openid for h in holds_in_db(app)] == [shopper(emulator, 0).openid]


def test_a_day_out_of_range_or_an_unknown_item_shows_why_and_changes_nothing(app, base_url, emulator):
    variant = lipstick(app)
    http = signed_in(base_url, emulator)
    form = hold_form(page(base_url, http, GOODS).text, variant)
    before = rows(app)
    too_far = post(base_url, http, form, visit_day=(today() + timedelta(days=holds.MAX_DAYS_AHEAD + 1)).isoformat())
    assert too_far.status_code == 422 and f"at most {holds.MAX_DAYS_AHEAD} days ahead" in too_far.text
    passed = post(base_url, http, form, visit_day=(today() - timedelta(days=1)).isoformat())
    assert passed.status_code == 422 and "has passed" in passed.text
    unknown = post(base_url, http, form, variant_id="4242")
    assert unknown.status_code == 404 and "no holdable item 4242" in unknown.text
    for junk in ({"visit_day": "soon"}, {"visit_day": ""}, {"variant_id": "9" * 40}, {"variant_id": "0"},
                 {"key": "short"}):
        answer = post(base_url, http, form, **junk)
        assert answer.status_code == 400 and 'id="problem"' in answer.text, junk
    assert rows(app) == before and held(app, variant) == 0
    # The last day the picker offers is one a hold is made for.
    last = (today() + timedelta(days=holds.MAX_DAYS_AHEAD)).isoformat()
    assert post(base_url, http, form, visit_day=last).status_code == 303
    quiet(app)
    assert [h.visit_day.isoformat() for h in holds_in_db(app)] == [last]


def test_a_form_key_reused_for_another_day_is_refused_not_a_second_hold(app, base_url, emulator):
    variant = lipstick(app, holdable=3)
    http = signed_in(base_url, emulator)
    form = hold_form(page(base_url, http, GOODS).text, variant)
    assert post(base_url, http, form).status_code == 303
    quiet(app)
    before = rows(app)
    again = post(base_url, http, form, visit_day=(today() + timedelta(days=1)).isoformat())
    assert again.status_code == 422 and "reload the page" in again.text
    assert rows(app) == before and held(app, variant) == 1


def test_someone_elses_hold_is_a_404_and_the_owner_cancels_it(app, base_url, emulator):
    variant = lipstick(app)
    owner = signed_in(base_url, emulator, 0)
    assert post(base_url, owner, hold_form(page(base_url, owner, GOODS).text, variant)).status_code == 303
    quiet(app)
    [made] = holds_in_db(app)
    cancel = next(f for f in forms(page(base_url, owner, f"{PAGES}/mine").text)
                  if f["action"].endswith(f"/holds/{made.id}/cancel"))

    stranger = signed_in(base_url, emulator, 1)
    stranger_csrf = forms(page(base_url, stranger, GOODS).text)[0]["csrf"]
    before = rows(app)
    assert post(base_url, stranger, cancel, csrf=stranger_csrf).status_code == 404
    assert stranger.get(f"{base_url}{PAGES}/holds/{made.id}/qr.png", timeout=TIMEOUT).status_code == 404
    assert f'id="hold-{made.id}"' not in page(base_url, stranger, f"{PAGES}/mine").text
    assert rows(app) == before and held(app, variant) == 1

    done = post(base_url, owner, cancel)
    assert done.status_code == 303 and "done=hold_cancelled" in done.headers["Location"]
    quiet(app)
    assert [h.status for h in holds_in_db(app)] == ["cancelled"] and held(app, variant) == 0


def test_hostile_hold_form_fields_never_give_a_5xx_and_a_refusal_changes_nothing(app, emulator):
    """The hold form with any field made hostile (the CSRF token kept valid): never a 5xx, never a
    traceback, a refusal changes nothing."""
    from hypothesis import given
    from hypothesis import strategies as st

    from tests.fuzz.harness import huge_text, odd_text
    from wx_service.edges import h5

    variant = lipstick(app, holdable=2)
    client = app.test_client()
    with client.session_transaction() as session:
        session[h5.OPENID_KEY] = shopper(emulator).openid
        session[h5.CSRF_KEY] = "fuzz-csrf-token"
    base = {"csrf": "fuzz-csrf-token", "variant_id": str(variant), "visit_day": today().isoformat(),
            "key": "fuzz-key-0001"}
    values = odd_text | huge_text.map(lambda s: s[:5000]) | st.integers().map(str) | st.sampled_from(
        [str(2**31), str(2**63), "-1", "0", "1e3", "9999-12-31", "0001-01-01", "2026-02-30"])
    with Harness(app, "h5:hold form") as harness:
        @given(field=st.sampled_from(sorted(base)), value=values)
        def run(field: str, value: str) -> None:
            body = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in (base | {field: value}).items())
            harness.check(lambda: client.post(PAGES + "/hold", data=body,
                                              content_type="application/x-www-form-urlencoded"), f"hold {field}")
        run()


# -- in a real browser ----------------------------------------------------------------------------------

@pytest.fixture
def browser():
    with headless_chromium("h5-holds", window="420,900") as driver:
        yield driver


@needs_chromium
def test_a_shopper_holds_a_variant_and_sees_it_with_its_qr_in_chromium(app, base_url, emulator, browser):
    """From the services page to the goods, a visit day picked, 保留 tapped, and the hold under
    "my reservations" with its QR actually drawn: as a phone would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    variant = lipstick(app, holdable=2)
    buyer = shopper(emulator)  # the emulator's authorize page signs in the first shopper
    wait = WebDriverWait(browser, 20)
    day = (today() + timedelta(days=2)).isoformat()

    browser.get(f"{base_url}{PAGES}")
    wait.until(lambda d: d.find_elements(By.ID, "goods-link"))
    browser.find_element(By.ID, "goods-link").click()
    wait.until(lambda d: d.find_elements(By.ID, f"variant-{variant}"))
    row = browser.find_element(By.ID, f"variant-{variant}")
    assert "可保留 2 件" in row.text
    Select(row.find_element(By.NAME, "visit_day")).select_by_value(day)
    row.find_element(By.CSS_SELECTOR, "button.hold").click()

    wait.until(lambda d: d.find_elements(By.ID, "done"))
    assert "保留成功" in browser.find_element(By.ID, "done").text
    quiet(app)
    [made] = holds_in_db(app)
    assert (made.openid, made.variant_id, made.visit_day.isoformat()) == (buyer.openid, variant, day)
    card = browser.find_element(By.ID, f"hold-{made.id}")
    assert made.visit_code in card.find_element(By.CSS_SELECTOR, ".visit-code").text and day in card.text
    qr = card.find_element(By.CSS_SELECTOR, "img.qr")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", qr) > 0)
    assert held(app, variant) == 1

    browser.find_element(By.ID, "nav-goods").click()
    wait.until(lambda d: d.find_elements(By.ID, f"variant-{variant}"))
    assert "可保留 1 件" in browser.find_element(By.ID, f"variant-{variant}").text
