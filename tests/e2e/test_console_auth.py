"""Staff console sign-in over HTTP: passwords, the session cookie, CSRF on writes, lock-out."""
from __future__ import annotations

import re

import pytest
import requests

from members import staff as staff_service
from tests.integration.members_helpers import make_staff, uow

PASSWORD = "counter-pass-42"


@pytest.fixture
def staff(app):
    make_staff(app, "lin")
    with uow(app):
        staff_service.set_password("lin", PASSWORD)
    return "lin"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def sign_in(base_url: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    token = _csrf(session.get(f"{base_url}/console/login", timeout=5).text)
    response = session.post(f"{base_url}/console/login", timeout=5, allow_redirects=False,
                            data={"csrf_token": token, "username": username, "password": password})
    return session, response


def test_a_console_request_that_changes_nothing_sends_no_cookie(app, base_url, staff):
    """A live page's polls and streams must not re-send the session cookie: an older copy arriving
    late would wipe what another tab of the same browser just stored (the OA pages' sign-in state
    during the web authorization), and that sign-in would fail."""
    session, response = sign_in(base_url, staff, PASSWORD)
    assert "session" in response.cookies  # signing in stores the session
    for path in ("/console/", "/console/reservations/day", "/console/audit"):
        answer = session.get(f"{base_url}{path}", timeout=5, allow_redirects=False)
        assert "Set-Cookie" not in answer.headers, path


def test_pages_need_sign_in(app, base_url):
    response = requests.get(f"{base_url}/console/", timeout=5, allow_redirects=False)
    assert response.status_code == 302
    assert "/console/login" in response.headers["Location"]
    api = requests.get(f"{base_url}/console/counter/api/orders", timeout=5, allow_redirects=False)
    assert api.status_code in (401, 404)  # 401 once the counter API exists; never the data


def test_sign_in_with_the_right_password_opens_the_console(app, base_url, staff):
    session, response = sign_in(base_url, staff, PASSWORD)
    assert response.status_code == 302
    home = session.get(f"{base_url}/console/", timeout=5)
    assert home.status_code == 200
    assert "Lin" in home.text
    cookie = next(c for c in session.cookies if c.name == "session")
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_wrong_password_unknown_user_and_missing_password_hash_are_refused(app, base_url, staff):
    make_staff(app, "nopass")  # added by `staff add`, no password set: cannot sign in
    for username, password in ((staff, "wrong-password"), ("ghost", PASSWORD), ("nopass", "")):
        session, response = sign_in(base_url, username, password)
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert session.get(f"{base_url}/console/", timeout=5, allow_redirects=False).status_code == 302


def test_sign_in_without_the_csrf_token_is_refused(app, base_url, staff):
    response = requests.post(f"{base_url}/console/login", timeout=5, allow_redirects=False,
                             data={"username": staff, "password": PASSWORD})
    assert response.status_code == 400


def test_a_write_without_the_csrf_token_is_refused_and_sign_out_needs_it(app, base_url, staff):
    session, _ = sign_in(base_url, staff, PASSWORD)
    refused = session.post(f"{base_url}/console/logout", timeout=5, allow_redirects=False)
    assert refused.status_code == 403
    assert session.get(f"{base_url}/console/", timeout=5).status_code == 200  # still signed in
    token = _csrf(session.get(f"{base_url}/console/", timeout=5).text)
    out = session.post(f"{base_url}/console/logout", data={"csrf_token": token}, timeout=5,
                       allow_redirects=False)
    assert out.status_code == 302
    assert session.get(f"{base_url}/console/", timeout=5, allow_redirects=False).status_code == 302


def test_ten_failures_lock_the_username_out_even_for_the_right_password(app, base_url, staff):
    for _ in range(10):
        assert sign_in(base_url, staff, "guess")[1].status_code == 401
    _, response = sign_in(base_url, staff, PASSWORD)
    assert response.status_code == 401
    assert "Too many failed attempts" in response.text


def test_next_only_redirects_within_the_site(app, base_url, staff):
    session = requests.Session()
    token = _csrf(session.get(f"{base_url}/console/login", timeout=5).text)
    for target, expected in (("//evil.example/x", "/console/"), ("https://evil.example/", "/console/"),
                             ("/console/cashier/", "/console/cashier/")):
        session.cookies.clear()
        token = _csrf(session.get(f"{base_url}/console/login", timeout=5).text)
        response = session.post(f"{base_url}/console/login", params={"next": target}, timeout=5,
                                 allow_redirects=False,
                                 data={"csrf_token": token, "username": staff, "password": PASSWORD})
        assert response.status_code == 302
        assert response.headers["Location"].endswith(expected)


def test_a_deactivated_staff_member_is_signed_out(app, base_url, staff):
    session, _ = sign_in(base_url, staff, PASSWORD)
    with uow(app):
        staff_service.get_staff(staff).active = False
    response = session.get(f"{base_url}/console/", timeout=5, allow_redirects=False)
    assert response.status_code == 302


def test_staff_password_cli_sets_a_password_that_signs_in(app, base_url):
    make_staff(app, "wang")
    runner = app.test_cli_runner()
    short = runner.invoke(args=["staff", "password", "wang", "--password", "short"])
    assert short.exit_code != 0 and "at least 8" in short.output
    result = runner.invoke(args=["staff", "password", "wang", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert sign_in(base_url, "wang", "a-long-password")[1].status_code == 302
    missing = runner.invoke(args=["staff", "password", "nobody", "--password", "a-long-password"])
    assert missing.exit_code != 0 and "no staff member" in missing.output
