"""The OA's reservation pages over HTTP and in real headless Chromium: the shopper signs in through
the emulated web authorization, picks a service and a slot, books it (once, however often the form
is posted), sees it under "my reservations" with its visit QR, joins the waiting list of a full
slot, and cancels. Forms need the session's CSRF token; someone else's booking is a 404; every
refusal shows its reason and changes nothing.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from sqlalchemy import select

from reservations import slots
from reservations.models import Booking, WaitlistEntry
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.test_h5_pay import go, location, shopper, sign_in
from tests.fuzz.harness import Harness
from tests.integration.members_helpers import make_member
from tests.integration.reservation_helpers import on_grid, used, uow
from tests.integration.reservation_helpers import service as make_service
from wx_service.ground.db import utcnow
from wx_service.ground.qr_images import qr_png_bytes

TIMEOUT = 15
PAGES = "/h5/reservations"


def rows(app) -> tuple:
    return Harness(app, "rows").fingerprint()


def bookings_in_db(app) -> list[Booking]:
    with uow(app) as session:
        return list(session.scalars(select(Booking).order_by(Booking.id)))


def page(base_url: str, http: requests.Session, path: str) -> requests.Response:
    answer = http.get(base_url + path, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["Cache-Control"] == "no-store"
    return answer


def forms(text: str) -> list[dict[str, str]]:
    """Each form on the page: its action and its hidden fields."""
    found = []
    for match in re.finditer(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', text, re.S):
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', match.group(2)))
        found.append({"action": html.unescape(match.group(1)), **{k: html.unescape(v) for k, v in fields.items()}})
    return found


def slot_form(text: str, at: datetime, action: str = "/book") -> dict[str, str]:
    wanted = at.astimezone(slots.STORE_ZONE).isoformat(timespec="seconds")
    return next(f for f in forms(text) if f.get("starts_at") == wanted and f["action"] == PAGES + action)


def post(base_url: str, http: requests.Session, form: dict[str, str], **extra: str) -> requests.Response:
    fields = {k: v for k, v in form.items() if k != "action"} | extra
    return http.post(base_url + form["action"], data=fields, allow_redirects=False, timeout=TIMEOUT)


def day_of(at: datetime) -> str:
    return slots.store_day(at).isoformat()


def quiet(app) -> None:
    queue = app.extensions["wx"].queue
    if hasattr(queue, "wait_idle"):
        queue.wait_idle(timeout=15)


# -- over HTTP -------------------------------------------------------------------------------------

def test_the_pages_send_an_unknown_shopper_to_sign_in_first_and_back(app, base_url, emulator):
    make_service(app)
    http = requests.Session()
    first = location(go(http, f"{base_url}{PAGES}/mine"))
    assert urlsplit(first).path == "/h5/oauth/start" and parse_qs(urlsplit(first).query)["next"] == [f"{PAGES}/mine"]
    http = sign_in(base_url, shopper(emulator).openid, f"{PAGES}/mine")
    assert "我的预约" in page(base_url, http, f"{PAGES}/mine").text


def test_a_shopper_books_from_the_slots_page_once_and_sees_it_with_its_qr(app, base_url, emulator):
    service, resource = make_service(app, capacity=2)
    buyer = shopper(emulator)
    member_id = make_member(app, oa_openid=buyer.openid)
    at = on_grid(app, service)
    http = sign_in(base_url, buyer.openid, PAGES)
    listing = page(base_url, http, PAGES).text
    assert "肌肤测试" in listing and f'href="{PAGES}/services/{service}"' in listing
    day = page(base_url, http, f"{PAGES}/services/{service}?day={day_of(at)}").text
    form = slot_form(day, at)
    assert form["key"] and form["csrf"]

    first, double_tap = post(base_url, http, form), post(base_url, http, form)
    assert first.status_code == double_tap.status_code == 303
    assert first.headers["Location"] == double_tap.headers["Location"]  # the same booking, twice
    [booking] = bookings_in_db(app)
    assert (booking.channel, booking.openid, booking.member_id, booking.starts_at) == ("h5", buyer.openid,
                                                                                       member_id, at)
    assert used(app, resource) == 1
    assert first.headers["Location"].endswith(f"{PAGES}/mine?done=booked#booking-{booking.id}")

    mine = page(base_url, http, f"{PAGES}/mine?done=booked").text
    assert "预约成功" in mine and f'id="booking-{booking.id}"' in mine and booking.visit_code in mine
    assert f'src="{PAGES}/bookings/{booking.id}/qr.png"' in mine
    qr = http.get(f"{base_url}{PAGES}/bookings/{booking.id}/qr.png", timeout=TIMEOUT)
    assert qr.headers["Content-Type"] == "image/png" and qr.content == qr_png_bytes(booking.visit_code)
    # the slot now shows one place fewer
    assert "余 1 / 2" in page(base_url, http, f"{PAGES}/services/{service}?day={day_of(at)}").text


def test_writes_need_the_sessions_csrf_token_and_a_signed_in_shopper(app, base_url, emulator):
    service, _ = make_service(app)
    at = on_grid(app, service)
    http = sign_in(base_url, shopper(emulator).openid, PAGES)
    form = slot_form(page(base_url, http, f"{PAGES}/services/{service}?day={day_of(at)}").text, at)
    before = rows(app)
    for csrf in ("", "forged", form["csrf"] + "x"):
        refused = post(base_url, http, form, csrf=csrf)
        assert refused.status_code == 403 and "expired" in refused.text
    stranger = requests.Session()
    signed_out = post(base_url, stranger, form)
    assert signed_out.status_code == 302 and urlsplit(signed_out.headers["Location"]).path == "/h5/oauth/start"
    assert rows(app) == before


def test_a_refused_booking_redraws_the_day_with_why_and_changes_nothing(app, base_url, emulator):
    service, _ = make_service(app, capacity=1)
    at = on_grid(app, service)
    http = sign_in(base_url, shopper(emulator).openid, PAGES)
    form = slot_form(page(base_url, http, f"{PAGES}/services/{service}?day={day_of(at)}").text, at)
    before = rows(app)
    past = post(base_url, http, form, starts_at=(utcnow() - timedelta(hours=2)).isoformat())
    assert past.status_code == 422 and "passed" in past.text
    naive = post(base_url, http, form, starts_at=at.astimezone(slots.STORE_ZONE).replace(tzinfo=None).isoformat())
    assert naive.status_code == 400 and "zone offset" in naive.text
    off_grid = post(base_url, http, form, starts_at=(at + timedelta(minutes=7)).isoformat())
    assert off_grid.status_code == 422 and "not a start time" in html.unescape(off_grid.text)
    unknown = post(base_url, http, form, service_id="4242")
    assert unknown.status_code == 404 and "no service 4242" in unknown.text
    for junk in ({"service_id": "9" * 40}, {"key": "short"}, {"starts_at": "\x00"}):
        assert post(base_url, http, form, **junk).status_code == 400, junk
    assert rows(app) == before


def test_a_full_slot_offers_the_waiting_list_instead(app, base_url, emulator):
    service, _ = make_service(app, capacity=1)
    at = on_grid(app, service)
    first, second = shopper(emulator, 0), shopper(emulator, 1)
    alice = sign_in(base_url, first.openid, PAGES)
    assert post(base_url, alice, slot_form(page(base_url, alice, f"{PAGES}/services/{service}?day={day_of(at)}")
                                           .text, at)).status_code == 303
    quiet(app)
    bob = sign_in(base_url, second.openid, PAGES)
    day = page(base_url, bob, f"{PAGES}/services/{service}?day={day_of(at)}").text
    with pytest.raises(StopIteration):
        slot_form(day, at)  # no book button on a full slot
    joined = post(base_url, bob, slot_form(day, at, "/waitlist"))
    assert joined.status_code == 303 and "done=waitlisted" in joined.headers["Location"]
    mine = page(base_url, bob, f"{PAGES}/mine?done=waitlisted").text
    assert "已加入候补" in mine and "排在第 1 位" in mine
    with uow(app) as session:
        [entry] = session.scalars(select(WaitlistEntry)).all()
        assert (entry.openid, entry.status) == (second.openid, "waiting")
    leave = next(f for f in forms(mine) if f["action"].endswith(f"/waitlist/{entry.id}/leave"))
    assert post(base_url, alice, leave, csrf=forms(page(base_url, alice, f"{PAGES}/mine").text)[0]["csrf"]) \
        .status_code == 404  # not alice's place
    assert post(base_url, bob, leave).status_code == 303
    assert "排在第" not in page(base_url, bob, f"{PAGES}/mine").text


def test_cancel_from_my_reservations_and_nobody_else_can(app, base_url, emulator):
    service, resource = make_service(app, capacity=1)
    at = on_grid(app, service)
    owner, other = shopper(emulator, 0), shopper(emulator, 1)
    http = sign_in(base_url, owner.openid, PAGES)
    post(base_url, http, slot_form(page(base_url, http, f"{PAGES}/services/{service}?day={day_of(at)}").text, at))
    quiet(app)
    [booking] = bookings_in_db(app)
    cancel = next(f for f in forms(page(base_url, http, f"{PAGES}/mine").text)
                  if f["action"].endswith(f"/bookings/{booking.id}/cancel"))

    stranger = sign_in(base_url, other.openid, PAGES)
    stranger_csrf = forms(page(base_url, stranger, f"{PAGES}/services/{service}?day={day_of(at)}").text)[0]["csrf"]
    before = rows(app)
    assert post(base_url, stranger, cancel, csrf=stranger_csrf).status_code == 404
    assert stranger.get(f"{base_url}{PAGES}/bookings/{booking.id}/qr.png", timeout=TIMEOUT).status_code == 404
    assert stranger.get(f"{base_url}{PAGES}/bookings/{2**64}/qr.png", timeout=TIMEOUT).status_code == 404
    assert rows(app) == before

    done = post(base_url, http, cancel, reason="改天再来")
    assert done.status_code == 303 and "done=cancelled" in done.headers["Location"]
    quiet(app)
    [booking] = bookings_in_db(app)
    assert (booking.status, booking.cancel_reason) == ("cancelled", "改天再来") and used(app, resource) == 0
    mine = page(base_url, http, f"{PAGES}/mine?done=cancelled").text
    assert "已取消预约" in mine and f'id="booking-{booking.id}"' not in mine
    assert post(base_url, http, cancel).status_code == 409  # already cancelled


def test_a_bad_day_or_unknown_service_is_a_page_not_a_500(app, base_url, emulator):
    service, _ = make_service(app, horizon=10)
    http = sign_in(base_url, shopper(emulator).openid, PAGES)
    for path, status in ((f"/services/{service}?day=soon", 400), (f"/services/{service}?day=2001-01-01", 400),
                         (f"/services/{service}?day=9999-12-31", 400), ("/services/4242", 404),
                         (f"/services/{2**63}", 404)):
        answer = http.get(base_url + PAGES + path, timeout=TIMEOUT)
        assert answer.status_code == status, (path, answer.text[:200])
        assert 'id="problem"' in answer.text


def test_hostile_form_fields_never_give_a_5xx_and_a_refusal_changes_nothing(app, emulator):
    """The book and waitlist forms with any field made hostile (the CSRF token kept valid, so what
    is tested is the rest): never a 5xx, never a traceback, a refusal changes nothing."""
    from hypothesis import given
    from hypothesis import strategies as st

    from tests.fuzz.harness import huge_text, odd_text
    from wx_service.edges import h5

    service, _ = make_service(app, capacity=2)
    at = on_grid(app, service).astimezone(slots.STORE_ZONE).isoformat()
    client = app.test_client()
    with client.session_transaction() as session:
        session[h5.OPENID_KEY] = shopper(emulator).openid
        session[h5.CSRF_KEY] = "fuzz-csrf-token"
    base = {"csrf": "fuzz-csrf-token", "service_id": str(service), "starts_at": at, "key": "fuzz-key-0001"}
    values = odd_text | huge_text.map(lambda s: s[:5000]) | st.integers().map(str) | st.sampled_from(
        [str(2**31), str(2**63), "-1", "0", "1e3", at.replace("+08:00", ""), "9999-12-31T23:59:59-14:00"])
    with Harness(app, "h5:reservation forms") as harness:
        @given(action=st.sampled_from(["/book", "/waitlist", "/bookings/1/cancel", "/waitlist/1/accept"]),
               field=st.sampled_from(sorted(base) + ["reason"]), value=values)
        def run(action: str, field: str, value: str) -> None:
            # Percent-encoded by hand: a lone surrogate goes as the bytes it makes, as a hostile client's would.
            body = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in (base | {field: value}).items())
            harness.check(lambda: client.post(PAGES + action, data=body,
                                              content_type="application/x-www-form-urlencoded"), f"{action} {field}")
        run()


# -- in a real browser ----------------------------------------------------------------------------------

@pytest.fixture
def browser():
    with headless_chromium("h5-reservations", window="420,900") as driver:
        yield driver


@needs_chromium
def test_a_shopper_books_sees_the_qr_and_cancels_in_chromium(app, base_url, emulator, browser):
    """Sign-in hops through the emulated OAuth, the services page, a day's slots, the book button,
    "my reservations" with the QR actually drawn, and the cancel form: all as a phone would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    service, resource = make_service(app, capacity=1)
    buyer = shopper(emulator)  # the emulator's authorize page signs in the first shopper
    at = on_grid(app, service, hours_ahead=26)
    wait = WebDriverWait(browser, 20)

    browser.get(f"{base_url}{PAGES}")
    wait.until(lambda d: d.find_elements(By.ID, f"service-{service}"))
    assert urlsplit(browser.current_url).path == PAGES
    browser.find_element(By.ID, f"service-{service}").click()
    wait.until(lambda d: d.find_elements(By.ID, "slots"))
    day = day_of(at)
    browser.find_element(By.CSS_SELECTOR, f".days a[data-day='{day}']").click()
    wait.until(lambda d: d.find_element(By.ID, "slots").get_attribute("data-day") == day)
    wanted = at.astimezone(slots.STORE_ZONE).isoformat(timespec="seconds")
    browser.find_element(By.CSS_SELECTOR, f"li[data-starts-at='{wanted}'] button.book").click()

    wait.until(lambda d: d.find_elements(By.ID, "done"))
    assert "预约成功" in browser.find_element(By.ID, "done").text
    quiet(app)
    [booking] = bookings_in_db(app)
    assert (booking.openid, booking.channel, booking.starts_at) == (buyer.openid, "h5", at)
    card = browser.find_element(By.ID, f"booking-{booking.id}")
    assert booking.visit_code in card.find_element(By.CSS_SELECTOR, ".visit-code").text
    qr = card.find_element(By.CSS_SELECTOR, "img.qr")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", qr) > 0)
    assert used(app, resource) == 1

    card.find_element(By.NAME, "reason").send_keys("临时有事")
    card.find_element(By.CSS_SELECTOR, "button.cancel-booking").click()
    wait.until(lambda d: d.find_elements(By.ID, "done") and "已取消" in d.find_element(By.ID, "done").text)
    assert not browser.find_elements(By.ID, f"booking-{booking.id}")
    quiet(app)
    [booking] = bookings_in_db(app)
    assert (booking.status, booking.cancel_reason) == ("cancelled", "临时有事") and used(app, resource) == 0
