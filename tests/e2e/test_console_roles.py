"""Who may use which console route (issue 12's roles).

Two checks, both enumerated from the app's URL map so a new route cannot slip past:
- declared: every /console rule's view carries a rule (auth.roles / any_staff / public), and that
  rule is exactly what TABLE below says, role by role;
- enforced: one real signed-in HTTP session per role walks every route and method; where TABLE says
  `y` the answer is anything but a 403 (and never a bounce to sign-in), where it says `.` it is the
  role refusal (403, marked X-Console-Refused: role, the needed roles named).

A new console route fails here until it declares its rule in code and gets its row in TABLE. The
admin row is all `y` (admins may do everything); `none` is a signed-in staff member with no role.
Marketing reaches the content pages; marketing and analysts reach the funnel report
(/console/funnel) and the brand-news page; only marketing announces from it.

And in Chromium: an agent signs in, sees only the desk on the home page, and is refused the refund
page (/console/refunds, cashiers and admins only), its JSON call and its form alike.
"""
from __future__ import annotations

import re

import pytest
import requests
from flask import Flask

from members import staff as staff_service
from service_desk.models import Agent
from tests.e2e.browser import headless_chromium, needs_chromium
from tests.e2e.desk_helpers import PASSWORD, Console, make_agent, make_plain_staff, make_team, sign_in
from tests.integration.members_helpers import uow
from wx_service.edges.console.auth import ANY_STAFF, CONSOLE_RULE, PUBLIC, REFUSED_HEADER, any_staff, public, roles

COLUMNS = ("admin", "counter", "cashier", "agent", "marketing", "analyst", "none")

EVERYONE = "yyyyyyy"
TILL = "yyy...."  # admin, counter staff, cashier
CASHIER = "y.y...."
DESK = "y..y..."
RESERVATIONS = "yy....."
ADMIN_ONLY = "y......"
MARKETING_READ = "y...yy."  # reports and progress: marketing and analysts read
MARKETING_WRITE = "y...y.."

# endpoint -> allowed (y) or refused (.) for each role in COLUMNS.
TABLE: dict[str, str] = {
    "console_auth.login": EVERYONE,
    "console_auth.home": EVERYONE,
    "console_auth.logout": EVERYONE,

    "console_counter.index": TILL,
    "console_counter.recent": TILL,
    "console_counter.create": TILL,
    "console_counter.show": TILL,
    "console_counter.cancel": TILL,
    "console_counter.qr": TILL,

    "console_cashier.index": CASHIER,
    "console_cashier.charge": CASHIER,
    "console_cashier.show": CASHIER,

    "console_refunds.index": CASHIER,
    "console_refunds.order": CASHIER,
    "console_refunds.refund": CASHIER,
    "console_refunds.show": CASHIER,

    "console_desk.index": DESK,
    "console_desk.metrics_page": DESK,
    "console_desk.faq_page": DESK,
    "console_desk.canned_page": DESK,
    "console_desk.conversations": DESK,
    "console_desk.counts": DESK,
    "console_desk.show": DESK,
    "console_desk.take": DESK,
    "console_desk.open_": DESK,
    "console_desk.answer": DESK,
    "console_desk.answer_template": DESK,
    "console_desk.retry": DESK,
    "console_desk.note": DESK,
    "console_desk.transfer": DESK,
    "console_desk.resolve": DESK,
    "console_desk.status": DESK,
    "console_desk.agents": DESK,
    "console_desk.side_panel": DESK,
    "console_desk.reveal_phone": DESK,
    "console_desk.search": DESK,
    "console_desk.canned": DESK,
    "console_desk.save_canned": DESK,
    "console_desk.delete_canned": DESK,
    "console_desk.faq_list": DESK,
    "console_desk.save_faq": DESK,
    "console_desk.delete_faq": DESK,
    "console_desk_media.upload": DESK,
    "console_desk_media.media": DESK,
    "console_desk_stream.stream": DESK,

    "console_reservations.index": RESERVATIONS,
    "console_reservations.day": RESERVATIONS,
    "console_reservations.week": RESERVATIONS,
    "console_reservations.goods": RESERVATIONS,
    "console_reservations.board_fragment": RESERVATIONS,
    "console_reservations.scan": RESERVATIONS,
    "console_reservations.check_in": RESERVATIONS,
    "console_reservations.confirm": RESERVATIONS,
    "console_reservations.decline": RESERVATIONS,
    "console_reservations.visited": RESERVATIONS,
    "console_reservations.confirm_hold": RESERVATIONS,
    "console_reservations.set_quantity": RESERVATIONS,
    "console_reservations.import_csv": RESERVATIONS,
    "console_reservations.stream": RESERVATIONS,

    "console_audit.index": ADMIN_ONLY,

    # The admin's walk posts empty forms to staff 1 (the admin themselves): refused as a bad value
    # or as deactivating oneself (409), never a role refusal.
    "console_staff.index": ADMIN_ONLY,
    "console_staff.add": ADMIN_ONLY,
    "console_staff.deactivate": ADMIN_ONLY,
    "console_staff.activate": ADMIN_ONLY,
    "console_staff.reset_password": ADMIN_ONLY,
    "console_staff.grant": ADMIN_ONLY,
    "console_staff.revoke": ADMIN_ONLY,
    "console_content.index": MARKETING_WRITE,
    "console_content.edit": MARKETING_WRITE,
    "console_content.preview": MARKETING_WRITE,
    "console_content.create": MARKETING_WRITE,
    "console_content.update": MARKETING_WRITE,
    "console_content.hours_exception": MARKETING_WRITE,
    "console_content.publish": MARKETING_WRITE,
    "console_content.schedule": MARKETING_WRITE,
    "console_content.unpublish": MARKETING_WRITE,
    "console_content.upload_image": MARKETING_WRITE,
    "console_funnel.index": MARKETING_READ,
    "console_announcements.index": MARKETING_READ,
    "console_announcements.progress": MARKETING_READ,
    "console_announcements.create": MARKETING_WRITE,
}

STREAMS = {"console_desk_stream.stream", "console_reservations.stream"}


def console_endpoints(app: Flask) -> dict[str, list]:
    """endpoint -> its rules, for every rule under /console (static files aside)."""
    found: dict[str, list] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console") and rule.endpoint != "static":
            found.setdefault(rule.endpoint, []).append(rule)
    return found


def undeclared(app: Flask) -> list[str]:
    """Console endpoints whose view declares no rule: each is a route anyone signed in could use
    because somebody forgot to say otherwise."""
    return sorted(endpoint for endpoint in console_endpoints(app)
                  if getattr(app.view_functions[endpoint], CONSOLE_RULE, None) is None)


def allowed_by_declaration(rule: object) -> str:
    """The TABLE row a declared rule means: admin always; any_staff/public everyone."""
    if rule in (PUBLIC, ANY_STAFF):
        return EVERYONE
    assert isinstance(rule, frozenset), rule
    return "".join("y" if role == "admin" or role in rule else "." for role in COLUMNS)


# -- declared ----------------------------------------------------------------------------------------

def test_every_console_route_declares_its_rule(app):
    assert len(console_endpoints(app)) > 50
    assert undeclared(app) == []


def test_the_check_catches_a_route_that_declares_nothing():
    probe = Flask("probe")
    probe.add_url_rule("/console/ok", "ok", roles("cashier")(lambda: "ok"))
    probe.add_url_rule("/console/home", "home", any_staff(lambda: "home"))
    probe.add_url_rule("/console/open", "open", public(lambda: "open"))
    probe.add_url_rule("/console/forgot", "forgot", lambda: "anyone")
    probe.add_url_rule("/elsewhere", "elsewhere", lambda: "not the console")
    assert undeclared(probe) == ["forgot"]
    with pytest.raises(ValueError):
        roles("superuser")
    with pytest.raises(ValueError):
        roles()


def test_the_table_and_the_code_agree_route_by_route(app):
    endpoints = console_endpoints(app)
    assert sorted(set(endpoints) - set(TABLE)) == [], "console routes with no row in TABLE"
    assert sorted(set(TABLE) - set(endpoints)) == [], "TABLE rows for routes that are gone"
    assert all(len(row) == len(COLUMNS) and set(row) <= {"y", "."} for row in TABLE.values())
    assert [role for role in COLUMNS if role != "none"] == list(staff_service.ROLES)
    disagree = {endpoint: (TABLE[endpoint], allowed_by_declaration(getattr(app.view_functions[endpoint], CONSOLE_RULE)))
                for endpoint in endpoints
                if TABLE[endpoint] != allowed_by_declaration(getattr(app.view_functions[endpoint], CONSOLE_RULE))}
    assert disagree == {}, "endpoint: (TABLE says, the code declares)"


# -- enforced, over HTTP -------------------------------------------------------------------------------

def _staff_per_role(app) -> dict[str, str]:
    """A signed-in-able staff member per column; the admin has an agent row but not the agent role
    (the desk needs a team to work in), so admin-always is what lets them in."""
    team = make_team(app)
    users = {role: f"role_{role}" for role in COLUMNS}
    for role, username in users.items():
        if role == "agent":
            make_agent(app, team, username)
            continue
        make_plain_staff(app, username)
        with uow(app) as session:
            if role == "counter":
                staff_service.grant_role(username, role, "LANCOME")
            elif role != "none":
                staff_service.grant_role(username, role)
            if role == "admin":
                session.add(Agent(staff_id=staff_service.get_staff(username).id, team_id=team, status="away",
                                  max_open=5, open_load=0))
    return users


def _calls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, path with sample arguments), sign-out last (it ends the session) and the
    sign-in form's POST left out (it starts a new one)."""
    calls = []
    for endpoint, rules in console_endpoints(app).items():
        for rule in rules:
            path = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if "int:" in m.group(0) else "x1", rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if not (endpoint == "console_auth.login" and method == "POST"):
                    calls.append((endpoint, method, path))
    return sorted(calls, key=lambda call: (call[0] == "console_auth.logout", call))


def _call(console: Console, method: str, path: str, stream: bool) -> requests.Response:
    response = console.http.request(method, console.url(path), headers={"X-CSRF-Token": console.csrf},
                                    json={} if method != "GET" else None, timeout=15, allow_redirects=False,
                                    stream=stream)
    if stream and response.status_code == 200:
        response.close()  # an open event stream: the headers are the answer, do not hold it open
    else:
        _ = response.content
    return response


def test_each_role_reaches_exactly_the_routes_its_row_allows(app, base_url):
    users = _staff_per_role(app)
    calls = _calls(app)
    wrong: list[tuple] = []
    for column, role in enumerate(COLUMNS):
        console = sign_in(base_url, users[role], PASSWORD)
        for endpoint, method, path in calls:
            response = _call(console, method, path, endpoint in STREAMS)
            refused = response.status_code == 403 and response.headers.get(REFUSED_HEADER) == "role"
            if TABLE[endpoint][column] == "y":
                signed_out = endpoint != "console_auth.logout" and (  # sign-out's answer is the sign-in page
                    response.status_code == 401 or "/console/login" in response.headers.get("Location", ""))
                if response.status_code == 403 or signed_out:
                    wrong.append((role, method, path, "should be allowed", response.status_code,
                                  response.text[:160]))
            elif not refused:
                wrong.append((role, method, path, "should be refused", response.status_code, response.text[:160]))
            elif "/api/" in path:
                body = response.json()
                assert body["needs"] and "ask an admin" in body["error"].lower(), body
            else:
                assert "Not for your role" in response.text and "grant-role" in response.text
    assert wrong == []


def test_the_home_page_lists_only_the_pages_a_role_may_open(app, base_url):
    users = _staff_per_role(app)
    links = {"counter-link": "console_counter.index", "cashier-link": "console_cashier.index",
             "refunds-link": "console_refunds.index",
             "reservations-link": "console_reservations.day", "desk-link": "console_desk.index",
             "audit-link": "console_audit.index", "staff-link": "console_staff.index",
             "content-link": "console_content.index", "funnel-link": "console_funnel.index",
             "announcements-link": "console_announcements.index"}
    for column, role in enumerate(COLUMNS):
        home = sign_in(base_url, users[role], PASSWORD).get("/console/")
        assert home.status_code == 200
        shown = {link for link in links if f'id="{link}"' in home.text}
        assert shown == {link for link, endpoint in links.items() if TABLE[endpoint][column] == "y"}, role
        assert ('id="no-pages"' in home.text) == (not shown), role


# -- the command line -----------------------------------------------------------------------------------

def test_roles_are_granted_listed_and_revoked_from_the_command_line(app):
    make_plain_staff(app, "mei")
    runner = app.test_cli_runner()

    def cli(*args: str):
        return runner.invoke(args=["staff", *args])

    assert "mei: no roles" in cli("roles", "mei").output
    for role in ("cashier", "marketing", "analyst", "agent"):
        granted = cli("grant-role", "mei", role)
        assert granted.exit_code == 0 and f"mei: {role}" in granted.output
    assert cli("grant-role", "mei", "counter", "--counter", "LANCOME").exit_code == 0
    assert cli("grant-role", "mei", "counter", "--counter", "DIOR").exit_code == 0
    assert cli("grant-role", "mei", "cashier", "--counter", "LANCOME").exit_code != 0  # names no counter
    assert cli("grant-role", "mei", "owner").exit_code != 0
    assert cli("grant-role", "ghost", "cashier").exit_code != 0
    listed = cli("roles", "mei").output.splitlines()
    assert listed == ["mei: counter of DIOR", "mei: counter of LANCOME", "mei: cashier", "mei: agent",
                      "mei: marketing", "mei: analyst"]

    revoked = cli("revoke-role", "mei", "counter", "--counter", "DIOR")
    assert revoked.exit_code == 0 and "1 grant" in revoked.output
    assert "2 grants" not in cli("revoke-role", "mei", "counter").output  # the one left: LANCOME
    assert "did not hold counter" in cli("revoke-role", "mei", "counter").output
    assert cli("revoke-role", "mei", "marketing").exit_code == 0
    assert cli("revoke-role", "ghost", "marketing").exit_code != 0
    assert cli("roles", "mei").output.splitlines() == ["mei: cashier", "mei: agent", "mei: analyst"]
    with uow(app):
        staff_id = staff_service.get_staff("mei").id
        assert staff_service.roles_of(staff_id) == {"cashier", "agent", "analyst"}
        assert staff_service.counters_of(staff_id) == frozenset()  # no counter role: no reservations
    assert cli("roles", "ghost").exit_code != 0


def test_desk_agent_add_grants_the_agent_role_so_the_row_and_the_role_agree(app, base_url):
    make_plain_staff(app, "lin")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["desk", "team-add", "service", "服务台"]).exit_code == 0
    console = sign_in(base_url, "lin", PASSWORD)
    assert console.get("/console/desk").status_code == 403
    assert runner.invoke(args=["desk", "agent-add", "lin", "service"]).exit_code == 0
    assert "lin: agent" in runner.invoke(args=["staff", "roles", "lin"]).output
    assert console.get("/console/desk").status_code == 200
    # Revoking the role shuts the door though the row stays (the row alone is not enough).
    assert runner.invoke(args=["staff", "revoke-role", "lin", "agent"]).exit_code == 0
    refused = console.get("/console/api/desk/counts")
    assert refused.status_code == 403 and refused.json()["needs"] == ["agent"]


# -- in Chromium ------------------------------------------------------------------------------------------

@needs_chromium
def test_an_agent_signs_in_and_cannot_open_the_refund_page(app, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    make_agent(app, make_team(app), "kefu")
    with headless_chromium("console-roles") as driver:
        driver.get(f"{base_url}/console/login")
        driver.find_element(By.ID, "username").send_keys("kefu")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        WebDriverWait(driver, 10).until(lambda d: "欢迎" in d.page_source)
        assert driver.find_elements(By.ID, "desk-link")
        assert not driver.find_elements(By.ID, "refunds-link") and not driver.find_elements(By.ID, "cashier-link")

        driver.get(f"{base_url}/console/refunds/")
        reason = WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "forbidden-reason"))[0].text
        assert "cashier" in reason and "kefu" in reason
        assert not driver.find_elements(By.ID, "find") and not driver.find_elements(By.ID, "amount")
        # Its JSON call and its form refuse too, from the page's own script (CSRF and all).
        answer = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const form = new URLSearchParams({csrf_token: csrf, out_refund_no: "R2026120314000012345678",
                                              amount: "1.00", reason: "x"});
            Promise.all([
              consoleCall("GET", "/console/refunds/api/orders/N1").then(() => "read", (err) => err.status + " " + (err.data.needs || []).join()),
              fetch("/console/refunds/N1", {method: "POST", body: form, credentials: "same-origin"}).then((r) => String(r.status)),
            ]).then(done);
        """)
        assert answer == ["403 cashier", "403"]
        driver.find_element(By.LINK_TEXT, "Back to the console's home page").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "desk-link"))


def test_the_demo_users_hold_the_roles_the_demo_walks_through(app):
    from wx_service.edges.demo_data import DEMO_AGENTS, DEMO_COUNTER_STAFF, DEMO_OFFICE_STAFF, DEMO_STAFF, load_demo_desk, load_demo_staff

    with uow(app):
        load_demo_staff()
        load_demo_desk()
    with uow(app):
        def held(username: str) -> frozenset[str]:
            return staff_service.roles_of(staff_service.get_staff(username).id)

        assert held(DEMO_STAFF[0]) == {"admin"}
        assert held(DEMO_COUNTER_STAFF[0]) == {"counter", "cashier"}
        assert staff_service.counters_of(staff_service.get_staff(DEMO_COUNTER_STAFF[0]).id) == {DEMO_COUNTER_STAFF[3]}
        assert all(held(username) == {"agent"} for username, _, _ in DEMO_AGENTS)
        assert [held(username) for username, _, _, _ in DEMO_OFFICE_STAFF] == [{"marketing"}, {"analyst"}]
