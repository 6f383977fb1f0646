"""The staff page (/console/staff): admins list the staff (username, name, roles with their
counters, active, added), add a staff member with a first password, deactivate and reactivate them,
reset a password, grant and revoke roles (a counter role with its counter's code; the page offers
the codes it knows: brands, reservation counters, counters already granted).

Plain HTML forms, each with the session's CSRF token as a hidden field (auth.staff_required checks
it on every POST); a write redirects back to the page with what it did, a refusal re-renders the
page with the domain's own words (400 for a bad value, 404 for an unknown staff member, 409 for
what members.staff refuses: an admin deactivating themselves or taking their own admin role).
Every write is one members.staff verb in one unit of work, and the verb records its audit entry;
deactivating an agent, or revoking their agent role, also stands them down at the desk
(service_desk.roster.stand_down: no new conversation is offered to them).

Admins only: `roles(ADMIN)` (admins pass every role check, so it names no other).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from marketing.models import Brand
from members import audit
from members import staff as staff_service
from members.models import Staff
from members.staff import ADMIN, AGENT, COUNTER, ROLE_LABELS, ROLES, StaffRefused
from reservations import board
from service_desk import roster
from wx_service.edges.console.auth import EPOCH, roles
from wx_service.ground.extensions import db

bp = Blueprint("console_staff", __name__, url_prefix="/console/staff", template_folder="templates")


def known_counters() -> list[str]:
    """The counter codes the grant form offers: brands' counters, the reservation counters and the
    counters already granted (a new code can still be typed)."""
    codes = set(db.session.scalars(select(Brand.counter_code).where(Brand.counter_code != "")))
    codes.update(board.counters())
    codes.update(staff_service.granted_counters())
    return sorted(codes)


def _rows() -> list[dict[str, Any]]:
    return [{"id": person.id, "username": person.username, "name": person.name, "active": person.active,
             "created": audit.local_time(person.created_at)[:16], "is_me": person.id == g.staff_id,
             "grants": [{"role": role, "counter": code, "label": f"{role}:{code}" if code else role}
                        for role, code in grants]}
            for person, grants in staff_service.roster()]


def _page(error: str = "", status: int = 200, form: dict[str, str] | None = None):
    with db.unit_of_work():
        g.staff = db.session.get(Staff, g.staff_id)  # fresh: a refused write's rollback expired the old one
        context = {"rows": _rows(), "counters": known_counters()}
    return render_template("console/staff.html", **context, roles=ROLES, role_labels=ROLE_LABELS, counter_role=COUNTER,
                           min_password=staff_service.MIN_PASSWORD_LENGTH, error=error,
                           form=form or {}), status


def _field(name: str, limit: int = 256) -> str:
    return (request.form.get(name) or "").strip()[:limit]


def _done(message: str):
    flash(message)
    return redirect(url_for("console_staff.index"), code=303)


def _write(staff_id: int | None, write, form: dict[str, str] | None = None):
    """Run `write(username)` in one unit of work; a refusal re-renders the page with its words."""
    try:
        with db.unit_of_work():
            username = ""
            if staff_id is not None:
                found = db.session.get(Staff, staff_id)
                if found is None:
                    raise LookupError(f"no staff member {staff_id}")
                username = found.username
            message = write(username)
    except StaffRefused as exc:
        return _page(str(exc), 409, form)
    except LookupError as exc:
        return _page(str(exc.args[0]), 404, form)
    except ValueError as exc:
        return _page(str(exc), 400, form)
    return _done(message)


@bp.get("")
@roles(ADMIN)
def index():
    return _page()


@bp.post("")
@roles(ADMIN)
def add():
    username, name, password = _field("username", 64), _field("name", 64), request.form.get("password") or ""
    if not password:
        return _page(f"an initial password is required (at least {staff_service.MIN_PASSWORD_LENGTH} characters)",
                     400, {"username": username, "name": name})

    def write(_: str) -> str:
        staff_service.add_staff(username, name, password[:staff_service.MAX_PASSWORD_LENGTH + 1],
                                by_staff_id=g.staff_id)
        return f"{username} added: no role yet, grant one below"
    return _write(None, write, {"username": username, "name": name})


@bp.post("/<int:staff_id>/deactivate")
@roles(ADMIN)
def deactivate(staff_id: int):
    def write(username: str) -> str:
        changed = staff_service.deactivate(username, by_staff_id=g.staff_id)
        roster.stand_down(staff_id)  # the desk offers them nothing more
        return f"{username} deactivated: cannot sign in, open sessions end" if changed else \
            f"{username} was already deactivated"
    return _write(staff_id, write)


@bp.post("/<int:staff_id>/activate")
@roles(ADMIN)
def activate(staff_id: int):
    def write(username: str) -> str:
        changed = staff_service.activate(username, by_staff_id=g.staff_id)
        return f"{username} reactivated" if changed else f"{username} was already active"
    return _write(staff_id, write)


@bp.post("/<int:staff_id>/password")
@roles(ADMIN)
def reset_password(staff_id: int):
    password = request.form.get("password") or ""

    def write(username: str) -> str:
        changed = staff_service.set_password(username, password[:staff_service.MAX_PASSWORD_LENGTH + 1],
                                             by_staff_id=g.staff_id)
        if changed.id == g.staff_id:
            session[EPOCH] = changed.session_epoch  # one's own reset keeps this session, ends the others
        return f"password reset for {username}: their open sessions end"
    return _write(staff_id, write)


@bp.post("/<int:staff_id>/roles")
@roles(ADMIN)
def grant(staff_id: int):
    role, code = _field("role", 16), _field("counter_code", 32)

    def write(username: str) -> str:
        staff_service.grant_role(username, role, code if role == COUNTER else "", by_staff_id=g.staff_id)
        return f"{username}: {role}" + (f" of {code}" if role == COUNTER else "") + " granted"
    return _write(staff_id, write)


@bp.post("/<int:staff_id>/roles/revoke")
@roles(ADMIN)
def revoke(staff_id: int):
    role, code = _field("role", 16), _field("counter_code", 32)

    def write(username: str) -> str:
        removed = staff_service.revoke_role(username, role, code, by_staff_id=g.staff_id)
        if removed and role == AGENT:
            roster.stand_down(staff_id)
        what = role + (f" of {code}" if code else "")
        return f"{username}: {what} revoked" if removed else f"{username} did not hold {what}"
    return _write(staff_id, write)
