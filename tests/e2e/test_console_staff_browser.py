"""The staff roles in real headless Chromium (issue 12): an agent is refused the refund page
(/console/refunds, where money goes back) and sees why, while a cashier and an admin open it; and an admin deactivates a staff member from the staff page, after which that
member's open session is refused at its next page load."""
from __future__ import annotations

from members import staff as staff_service
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD, make_agent, make_plain_staff, make_team
from tests.integration.members_helpers import uow


def sign_in_page(driver, base_url: str, username: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/console/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "console-pages"))


def page_state(driver) -> dict:
    """What the page shows, read in one script (no element kept across a reload)."""
    return driver.execute_script("""
        const text = (id) => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
        return {path: location.pathname, forbidden: text("forbidden-reason"), amount: !!document.getElementById("amount"),
                find: !!document.getElementById("find"), signIn: !!document.getElementById("sign-in"), error: text("error"), done: text("done")};
    """)


@needs_chromium
def test_an_agent_is_refused_the_refund_page_while_a_cashier_and_an_admin_open_it(app, base_url):
    from selenium.webdriver.support.ui import WebDriverWait

    make_agent(app, make_team(app), "kefu")
    make_plain_staff(app, "shouyin")
    make_plain_staff(app, "boss")
    with uow(app):
        staff_service.grant_role("shouyin", "cashier")
        staff_service.grant_role("boss", "admin")
    expected = {"kefu": False, "shouyin": True, "boss": True}
    for username, may in expected.items():
        with headless_chromium(f"refunds-{username}") as driver:
            sign_in_page(driver, base_url, username)
            driver.get(f"{base_url}/console/refunds/")
            shown = WebDriverWait(driver, 10).until(
                lambda d: (lambda s: s if s["forbidden"] or s["find"] else None)(page_state(d)))
            if may:
                assert shown["find"] and shown["forbidden"] is None, username
            else:
                assert not shown["find"], username
                assert "cashier" in shown["forbidden"] and "ask an admin" in shown["forbidden"].lower()


@needs_chromium
def test_an_admin_deactivates_a_member_whose_open_session_is_refused_at_the_next_page_load(app, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    make_plain_staff(app, "boss")
    make_plain_staff(app, "mei")
    with uow(app):
        staff_service.grant_role("boss", "admin")
        staff_service.grant_role("mei", "cashier")
    with headless_chromium("staff-member") as member, headless_chromium("staff-admin") as admin:
        sign_in_page(member, base_url, "mei")
        member.get(f"{base_url}/console/cashier/")
        WebDriverWait(member, 10).until(lambda d: page_state(d)["amount"])

        sign_in_page(admin, base_url, "boss")
        admin.find_element(By.ID, "staff-link").click()
        WebDriverWait(admin, 10).until(lambda d: d.find_elements(By.ID, "staff-mei"))
        # Refused for oneself, with the reason on the page.
        admin.find_element(By.CSS_SELECTOR, "#staff-boss button.deactivate").click()
        refused = WebDriverWait(admin, 10).until(lambda d: page_state(d)["error"])
        assert "cannot deactivate yourself" in refused
        admin.find_element(By.CSS_SELECTOR, "#staff-mei button.deactivate").click()
        done = WebDriverWait(admin, 10).until(lambda d: page_state(d)["done"])
        assert "mei deactivated" in done
        row = admin.execute_script("const r = document.getElementById('staff-mei');"
                                   "return [r.className, r.querySelector('.state').textContent];")
        assert row == ["inactive", "deactivated"]

        member.refresh()  # the member's next page load
        WebDriverWait(member, 10).until(lambda d: page_state(d)["signIn"])
        assert page_state(member)["path"] == "/console/login" and not page_state(member)["amount"]
        # and signing in again is refused
        member.find_element(By.ID, "username").send_keys("mei")
        member.find_element(By.ID, "password").send_keys(PASSWORD)
        member.find_element(By.ID, "sign-in").click()
        message = WebDriverWait(member, 10).until(lambda d: d.find_elements(By.ID, "login-error"))[0].text
        assert "Wrong username or password" in message
