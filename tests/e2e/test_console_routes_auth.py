"""Every console route is guarded: without a session a page redirects to sign-in and a JSON call
answers 401, whatever the method; a signed-in staff member without the agent role gets 403 on
every desk call (which role reaches which route: test_console_roles.py). Enumerated from the app's URL map, so a new route cannot forget its guard."""
from __future__ import annotations

import re

import requests

from tests.e2e.desk_helpers import make_plain_staff, sign_in

OPEN = {"/console/login"}  # the only console page anyone may open


def _console_rules(app) -> list[tuple[str, str]]:
    """(path with sample arguments, method) for every console rule and method it accepts."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console") or rule.rule in OPEN or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if "int:" in m.group(0) else "x1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((path, method))
    return found


def test_the_enumeration_sees_the_desk(app):
    paths = {path for path, _ in _console_rules(app)}
    assert "/console/desk" in paths and "/console/api/desk/stream" in paths
    assert "/console/api/desk/conversations/1/answer" in paths


def test_every_console_route_needs_a_session_for_every_method(app, base_url):
    for path, method in _console_rules(app):
        response = requests.request(method, base_url + path, timeout=5, allow_redirects=False)
        if "/api/" in path:
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"]
        else:
            assert response.status_code == 302, (method, path, response.status_code)
            assert "/console/login" in response.headers["Location"], (method, path)


def test_staff_who_are_not_agents_get_403_on_every_desk_call(app, base_url):
    make_plain_staff(app, "cashier")
    console = sign_in(base_url, "cashier")
    desk = [(p, m) for p, m in _console_rules(app) if p.startswith("/console/api/desk")]
    assert len(desk) > 20
    for path, method in desk:
        response = console.http.request(method, base_url + path, headers={"X-CSRF-Token": console.csrf},
                                        json={}, timeout=5, allow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
        assert "for customer-service agent" in response.json()["error"]
        assert response.headers["X-Console-Refused"] == "role"
    page = console.get("/console/desk")
    assert page.status_code == 403 and "for customer-service agent" in page.text
