"""The console's staff page over real HTTP (issue 12): an admin adds staff, deactivates and
reactivates them, resets passwords, grants and revokes roles; each write leaves one audit entry as
that admin (a refusal or a repeat none), every form needs the CSRF token, and an admin cannot lock
themselves out."""
from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from members import staff as staff_service
from members.models import AuditEntry, Staff
from tests.e2e.desk_helpers import PASSWORD, make_plain_staff, sign_in
from tests.integration.members_helpers import uow

NEW_PASSWORD = "another-pass-5678"


def ids(app) -> dict[str, int]:
    with uow(app) as session:
        return dict(session.execute(select(Staff.username, Staff.id)).all())


def entries_by(app, staff_id: int) -> list[tuple]:
    with uow(app) as session:
        return [(e.action, e.subject, e.before, e.after) for e in
                session.scalars(select(AuditEntry).where(AuditEntry.staff_id == staff_id).order_by(AuditEntry.id))]


@pytest.fixture
def admin(app, base_url):
    """Boss, an admin, signed in; and mei, plain staff who can sign in."""
    make_plain_staff(app, "boss")
    make_plain_staff(app, "mei")
    with uow(app):
        staff_service.grant_role("boss", "admin")
    return sign_in(base_url, "boss")


def can_sign_in(base_url: str, username: str, password: str = PASSWORD) -> bool:
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(f"{base_url}/console/login", timeout=5).text)
    response = http.post(f"{base_url}/console/login", timeout=5, allow_redirects=False,
                         data={"csrf_token": token.group(1), "username": username, "password": password})
    return response.status_code == 302


def form(console, path: str, **fields: str) -> requests.Response:
    """A form POST as the page sends it: the CSRF token as a hidden field, no header."""
    return console.http.post(console.url(path), data={"csrf_token": console.csrf, **fields}, timeout=10,
                             allow_redirects=False)


def page_error(response: requests.Response) -> str:
    found = re.search(r'id="error">([^<]*)<', response.text)
    return found.group(1) if found else ""


def test_the_page_lists_staff_with_roles_counters_state_and_offers_known_counters(app, admin):
    with uow(app):
        staff_service.grant_role("mei", "counter", "LANCOME")
        staff_service.grant_role("mei", "cashier")
        staff_service.deactivate("mei")
    page = admin.get("/console/staff")
    assert page.status_code == 200
    row = re.search(r'<tr data-username="mei".*?</tr>', page.text, re.S).group(0)
    assert 'data-grant="counter:LANCOME"' in row and 'data-grant="cashier"' in row
    assert "deactivated" in row and "Reactivate" in row
    assert '<option value="LANCOME">' in page.text  # the grant form offers the counters it knows
    boss_row = re.search(r'<tr data-username="boss".*?</tr>', page.text, re.S).group(0)
    assert 'data-grant="admin"' in boss_row and "(you)" in boss_row
    assert 'id="staff-link"' in admin.get("/console/").text


def test_an_admin_adds_a_staff_member_who_can_then_sign_in(app, base_url, admin):
    boss = ids(app)["boss"]
    added = form(admin, "/console/staff", username="zhao", name="赵", password="first-pass-1")
    assert added.status_code == 303
    assert "zhao added" in admin.get("/console/staff").text
    assert can_sign_in(base_url, "zhao", "first-pass-1")
    zhao = ids(app)["zhao"]
    assert entries_by(app, boss) == [("staff.add", f"staff:{zhao}", None, {"username": "zhao", "name": "赵"})]
    assert "first-pass-1" not in repr(entries_by(app, boss))

    short = form(admin, "/console/staff", username="qian", name="钱", password="short")
    assert short.status_code == 400 and "at least 8" in page_error(short)
    taken = form(admin, "/console/staff", username="zhao", name="又一个", password="first-pass-1")
    assert taken.status_code == 409 and "already exists" in page_error(taken)
    bad = form(admin, "/console/staff", username="a b", name="x", password="first-pass-1")
    assert bad.status_code == 400 and "username" in page_error(bad)
    missing = form(admin, "/console/staff", username="sun", name="孙")
    assert missing.status_code == 400 and "password" in page_error(missing)
    # without the CSRF token nothing is added
    forged = admin.http.post(admin.url("/console/staff"), timeout=5, allow_redirects=False,
                             data={"username": "li", "name": "李", "password": "first-pass-1"})
    assert forged.status_code == 403
    assert set(ids(app)) == {"boss", "mei", "zhao"}
    assert len(entries_by(app, boss)) == 1


def test_deactivating_ends_the_members_open_session_at_its_next_request(app, base_url, admin):
    boss, mei = ids(app)["boss"], ids(app)["mei"]
    with uow(app):
        staff_service.grant_role("mei", "cashier")
    session = sign_in(base_url, "mei")
    assert session.get("/console/cashier/").status_code == 200

    assert form(admin, f"/console/staff/{mei}/deactivate").status_code == 303
    bounced = session.get("/console/cashier/")
    assert bounced.status_code == 302 and "/console/login" in bounced.headers["Location"]
    assert session.get("/console/cashier/api/charges/N1").status_code == 401
    assert not can_sign_in(base_url, "mei")
    assert form(admin, f"/console/staff/{mei}/deactivate").status_code == 303  # a repeat: nothing recorded

    assert form(admin, f"/console/staff/{mei}/activate").status_code == 303
    assert can_sign_in(base_url, "mei")
    # The old cookie stays dead: the reactivation does not bring it back.
    assert session.get("/console/cashier/").status_code == 302
    assert entries_by(app, boss) == [
        ("staff.deactivate", f"staff:{mei}", {"active": True}, {"active": False}),
        ("staff.activate", f"staff:{mei}", {"active": False}, {"active": True}),
    ]


def test_an_admin_cannot_deactivate_themselves_or_drop_their_own_admin_role(app, base_url, admin):
    boss = ids(app)["boss"]
    refused = form(admin, f"/console/staff/{boss}/deactivate")
    assert refused.status_code == 409 and "cannot deactivate yourself" in page_error(refused)
    refused = form(admin, f"/console/staff/{boss}/roles/revoke", role="admin")
    assert refused.status_code == 409 and "cannot remove your own admin role" in page_error(refused)
    assert admin.get("/console/staff").status_code == 200  # still signed in, still an admin
    assert entries_by(app, boss) == []
    # Another admin may take it away (and the CLI refuses the same self-revoke).
    make_plain_staff(app, "wang")
    with uow(app):
        staff_service.grant_role("wang", "admin")
    other = sign_in(base_url, "wang")
    assert form(other, f"/console/staff/{boss}/roles/revoke", role="admin").status_code == 303
    assert admin.get("/console/staff").status_code == 403
    cli = app.test_cli_runner().invoke(args=["staff", "revoke-role", "wang", "admin", "--staff", "wang"])
    assert cli.exit_code != 0 and "cannot remove your own admin role" in cli.output


def test_a_password_reset_signs_in_with_the_new_one_and_ends_the_old_sessions(app, base_url, admin):
    boss, mei = ids(app)["boss"], ids(app)["mei"]
    old_session = sign_in(base_url, "mei")
    short = form(admin, f"/console/staff/{mei}/password", password="short")
    assert short.status_code == 400 and "at least 8" in page_error(short)
    assert form(admin, f"/console/staff/{mei}/password", password=NEW_PASSWORD).status_code == 303
    assert not can_sign_in(base_url, "mei", PASSWORD) and can_sign_in(base_url, "mei", NEW_PASSWORD)
    assert old_session.get("/console/").status_code == 302
    # One's own reset keeps the session it was made from.
    assert form(admin, f"/console/staff/{boss}/password", password=NEW_PASSWORD).status_code == 303
    assert admin.get("/console/staff").status_code == 200
    assert [e[:2] for e in entries_by(app, boss)] == [("staff.password", f"staff:{mei}"),
                                                       ("staff.password", f"staff:{boss}")]
    assert NEW_PASSWORD not in repr(entries_by(app, boss))
    assert form(admin, "/console/staff/999/password", password=NEW_PASSWORD).status_code == 404


def test_roles_are_granted_and_revoked_with_their_counter(app, base_url, admin):
    boss, mei = ids(app)["boss"], ids(app)["mei"]
    no_code = form(admin, f"/console/staff/{mei}/roles", role="counter", counter_code="")
    assert no_code.status_code == 400 and "names one counter" in page_error(no_code)
    assert form(admin, f"/console/staff/{mei}/roles", role="owner").status_code == 400
    assert form(admin, f"/console/staff/{mei}/roles", role="counter", counter_code="LANCOME").status_code == 303
    assert form(admin, f"/console/staff/{mei}/roles", role="counter", counter_code="LANCOME").status_code == 303
    # a non-counter role ignores a code typed by mistake
    assert form(admin, f"/console/staff/{mei}/roles", role="agent", counter_code="LANCOME").status_code == 303
    session = sign_in(base_url, "mei")
    assert session.get("/console/reservations/day?counter=LANCOME").status_code == 200
    assert form(admin, f"/console/staff/{mei}/roles/revoke", role="counter", counter_code="LANCOME").status_code == 303
    assert form(admin, f"/console/staff/{mei}/roles/revoke", role="cashier").status_code == 303  # not held
    assert "did not hold cashier" in admin.get("/console/staff").text
    assert session.get("/console/reservations/day").status_code == 403  # at its next request
    assert entries_by(app, boss) == [
        ("role.grant", f"staff:{mei}", {"roles": []}, {"roles": ["counter:LANCOME"]}),
        ("role.grant", f"staff:{mei}", {"roles": ["counter:LANCOME"]}, {"roles": ["agent", "counter:LANCOME"]}),
        ("role.revoke", f"staff:{mei}", {"roles": ["agent", "counter:LANCOME"]}, {"roles": ["agent"]}),
    ]


def test_the_cli_and_the_console_share_the_verbs_and_their_audit(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "add", "lin", "林"]).exit_code == 0
    make_plain_staff(app, "boss")
    assert runner.invoke(args=["staff", "deactivate", "lin", "--staff", "boss"]).exit_code == 0
    assert "already deactivated" in runner.invoke(args=["staff", "deactivate", "lin"]).output
    assert runner.invoke(args=["staff", "activate", "lin"]).exit_code == 0
    assert runner.invoke(args=["staff", "deactivate", "boss", "--staff", "boss"]).exit_code != 0
    lin, boss = ids(app)["lin"], ids(app)["boss"]
    with uow(app) as session:
        rows = [(e.staff_id, e.action, e.subject, e.detail) for e in
                session.scalars(select(AuditEntry).where(AuditEntry.subject == f"staff:{lin}").order_by(AuditEntry.id))]
    assert rows == [(None, "staff.add", f"staff:{lin}", "cli"), (boss, "staff.deactivate", f"staff:{lin}", ""),
                    (None, "staff.activate", f"staff:{lin}", "cli")]


def test_a_deactivated_or_revoked_agent_is_stood_down_at_the_desk(app, admin):
    from service_desk.models import Agent
    from tests.e2e.desk_helpers import make_agent, make_team

    team = make_team(app)
    make_agent(app, team, "kefu1")
    make_agent(app, team, "kefu2")
    staff = ids(app)

    def status(username: str) -> str:
        with uow(app) as session:
            return session.scalar(select(Agent.status).where(Agent.staff_id == staff[username]))

    assert status("kefu1") == status("kefu2") == "online"
    assert form(admin, f"/console/staff/{staff['kefu1']}/deactivate").status_code == 303
    assert form(admin, f"/console/staff/{staff['kefu2']}/roles/revoke", role="agent").status_code == 303
    assert status("kefu1") == status("kefu2") == "away"  # no conversation is offered to them any more
