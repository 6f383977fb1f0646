"""Store staff who sign in to the console: passwords (hashed by werkzeug), never stored plain, and
the roles that say which console pages each may use.

Every write here is a verb that records its own audit entry in the caller's unit of work, as the
staff member `by_staff_id` (None: a CLI run, recorded with detail "cli"), so the CLI and the
console's staff page share one rule and one record: staff.add, staff.password, staff.deactivate,
staff.activate, role.grant, role.revoke. A repeat that changes nothing (deactivating the
deactivated, granting a role held) records nothing. An admin cannot deactivate themselves or take
their own admin role away (StaffRefused): the console would otherwise lock its last admin out by a
slip of the mouse.
"""
from __future__ import annotations

import re

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from members import audit
from members.models import Staff, StaffRole
from wx_service.ground.extensions import db

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"[A-Za-z0-9_.\-]{2,64}")
MAX_NAME = 64
# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class StaffRefused(ValueError):
    """A staff write refused for a reason to show the person who asked (not a bad value alone)."""


def get_staff(username: str) -> Staff | None:
    return db.session.scalar(select(Staff).where(Staff.username == username))


def _cli_detail(by_staff_id: int | None, detail: str) -> str:
    return detail or (audit.CLI if by_staff_id is None else "")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def add_staff(username: str, name: str, password: str = "", *, by_staff_id: int | None = None,
              detail: str = "") -> Staff:
    """A new, active staff member with no role (and, with `password`, able to sign in). Audited
    as `staff.add` (never the password). ValueError for a bad or taken username. Flushes."""
    username, name = (username or "").strip(), (name or "").strip()
    if not USERNAME.fullmatch(username):
        raise ValueError("a username is 2-64 letters, digits, '_', '.' or '-'")
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a name is 1-{MAX_NAME} characters")
    if password:
        _check_password(password)
    if get_staff(username) is not None:
        raise StaffRefused(f"staff {username!r} already exists")
    added = Staff(username=username, name=name, password_hash=generate_password_hash(password) if password else "")
    db.session.add(added)
    db.session.flush()
    audit.record(by_staff_id, "staff.add", f"staff:{added.id}",
                 after={"username": username, "name": name},
                 detail=_cli_detail(by_staff_id, detail))
    return added


def set_password(username: str, password: str, *, by_staff_id: int | None = None, detail: str = "") -> Staff:
    """Set (or reset) a staff member's console password; their open console sessions end (the
    epoch moves on). Audited as `staff.password`, without the password. Flushes."""
    _check_password(password)
    staff = get_staff(username)
    if staff is None:
        raise LookupError(f"no staff member {username!r}")
    staff.password_hash = generate_password_hash(password)
    staff.session_epoch = (staff.session_epoch or 0) + 1
    db.session.flush()
    audit.record(by_staff_id, "staff.password", f"staff:{staff.id}", detail=_cli_detail(by_staff_id, detail))
    return staff


def _set_active(username: str, active: bool, by_staff_id: int | None, detail: str) -> bool:
    staff = _staff_or_refuse(username)
    if not active and by_staff_id == staff.id:
        raise StaffRefused("you cannot deactivate yourself; ask another admin")
    values: dict = {"active": active}
    if not active:
        values["session_epoch"] = Staff.session_epoch + 1
    moved = db.session.execute(update(Staff).where(Staff.id == staff.id, Staff.active.is_(not active))
                               .values(**values).execution_options(synchronize_session=False)).rowcount
    db.session.refresh(staff)
    if moved:
        audit.record(by_staff_id, "staff.activate" if active else "staff.deactivate", f"staff:{staff.id}",
                     before={"active": not active}, after={"active": active}, detail=_cli_detail(by_staff_id, detail))
    return bool(moved)


def deactivate(username: str, *, by_staff_id: int | None = None, detail: str = "") -> bool:
    """The staff member can no longer sign in, and every console session they hold is refused at
    its next request. Whether it changed anything (False: already deactivated, nothing recorded).
    StaffRefused for oneself. Audited as `staff.deactivate`. Flushes."""
    return _set_active(username, False, by_staff_id, detail)


def activate(username: str, *, by_staff_id: int | None = None, detail: str = "") -> bool:
    """Let a deactivated staff member sign in again (their old sessions stay ended). Whether it
    changed anything. Audited as `staff.activate`. Flushes."""
    return _set_active(username, True, by_staff_id, detail)


def authenticate(username: str, password: str) -> Staff | None:
    """The active staff member with this username and password, else None."""
    staff = get_staff(username)
    if staff is None or not staff.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(staff.password_hash, password) or not staff.active:
        return None
    return staff


# The console's roles (issue 12). `admin` may do everything; `counter` names one counter (its
# reservations, its till); the others name none. Which page needs which role is declared on each
# console route (wx_service/edges/console/auth.py) and pinned by tests/e2e/test_console_roles.py.
ADMIN, COUNTER, CASHIER, AGENT, MARKETING, ANALYST = "admin", "counter", "cashier", "agent", "marketing", "analyst"
ROLES = (ADMIN, COUNTER, CASHIER, AGENT, MARKETING, ANALYST)
ROLE_LABELS = {
    ADMIN: "admin",
    COUNTER: "counter staff",
    CASHIER: "cashier",
    AGENT: "customer-service agent",
    MARKETING: "marketing (content and campaigns)",
    ANALYST: "read-only analyst",
}


def _check(role: str, counter_code: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    if role == COUNTER and not counter_code:
        raise ValueError("the counter role names one counter (its code)")
    if role != COUNTER and counter_code:
        raise ValueError(f"the {role} role names no counter")


def _staff_or_refuse(username: str) -> Staff:
    staff = get_staff(username)
    if staff is None:
        raise LookupError(f"no staff member {username!r}")
    return staff


def grant_role(username: str, role: str, counter_code: str = "", *, by_staff_id: int | None = None,
               detail: str = "") -> StaffRole:
    """Give a staff member a role (`counter` needs the counter's code). Idempotent. Flushes.
    A new grant is audited as `role.grant` by `by_staff_id` (None: a CLI run, detail "cli")."""
    _check(role, counter_code)
    staff = _staff_or_refuse(username)
    found = db.session.scalar(select(StaffRole).where(StaffRole.staff_id == staff.id, StaffRole.role == role,
                                                      StaffRole.counter_code == counter_code))
    if found is None:
        roles_before = _role_names(staff.id)
        found = StaffRole(staff_id=staff.id, role=role, counter_code=counter_code)
        db.session.add(found)
        db.session.flush()
        audit.record(by_staff_id, "role.grant", f"staff:{staff.id}", before={"roles": roles_before},
                     after={"roles": _role_names(staff.id)},
                     detail=_cli_detail(by_staff_id, detail))
    return found


def revoke_role(username: str, role: str, counter_code: str = "", *, by_staff_id: int | None = None,
                detail: str = "") -> int:
    """Take a role away; for `counter` without a code, every counter's. The number of grants
    removed (0 when there was none: revoking twice is harmless). Flushes. A removal is audited as
    `role.revoke`. StaffRefused for an admin taking their own admin role."""
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    if counter_code and role != COUNTER:
        raise ValueError(f"the {role} role names no counter")
    staff = _staff_or_refuse(username)
    if role == ADMIN and by_staff_id == staff.id:
        raise StaffRefused("you cannot remove your own admin role; ask another admin")
    query = select(StaffRole).where(StaffRole.staff_id == staff.id, StaffRole.role == role)
    if counter_code:
        query = query.where(StaffRole.counter_code == counter_code)
    found = db.session.scalars(query).all()
    if not found:
        return 0
    roles_before = _role_names(staff.id)
    for grant in found:
        db.session.delete(grant)
    db.session.flush()
    audit.record(by_staff_id, "role.revoke", f"staff:{staff.id}", before={"roles": roles_before},
                 after={"roles": _role_names(staff.id)}, detail=_cli_detail(by_staff_id, detail))
    return len(found)


def grants_of(staff_id: int) -> list[tuple[str, str]]:
    """(role, counter_code) for each grant, in ROLES order then by counter."""
    rows = db.session.execute(select(StaffRole.role, StaffRole.counter_code)
                              .where(StaffRole.staff_id == staff_id)).all()
    order = {role: n for n, role in enumerate(ROLES)}
    return sorted(((role, code) for role, code in rows), key=lambda r: (order.get(r[0], len(ROLES)), r[1]))


def roles_of(staff_id: int) -> frozenset[str]:
    """The roles a staff member holds (a counter role once, whatever the number of counters)."""
    return frozenset(db.session.scalars(select(StaffRole.role).where(StaffRole.staff_id == staff_id)).all())


def may(held: frozenset[str], needed: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """The rule every console route applies: an admin may do anything, anyone else needs one of
    the roles the route names."""
    return ADMIN in held or bool(held & set(needed))


def _role_names(staff_id: int) -> list[str]:
    """A staff member's grants as sorted text: "admin", "counter:1F-cosmetics"."""
    rows = db.session.execute(select(StaffRole.role, StaffRole.counter_code).where(StaffRole.staff_id == staff_id))
    return sorted(f"{role}:{code}" if code else role for role, code in rows)


def counters_of(staff_id: int) -> frozenset[str] | None:
    """The counters whose reservations this staff member may see and change: None means every
    counter (an admin); an empty set means none."""
    rows = db.session.execute(select(StaffRole.role, StaffRole.counter_code).where(StaffRole.staff_id == staff_id)).all()
    if any(role == ADMIN for role, _code in rows):
        return None
    return frozenset(code for role, code in rows if role == COUNTER)


def roster() -> list[tuple[Staff, list[tuple[str, str]]]]:
    """Every staff member (by username) with their grants, in two queries: the console's staff page."""
    people = list(db.session.scalars(select(Staff).order_by(Staff.username)))
    order = {role: n for n, role in enumerate(ROLES)}
    grants: dict[int, list[tuple[str, str]]] = {}
    for staff_id, role, code in db.session.execute(select(StaffRole.staff_id, StaffRole.role, StaffRole.counter_code)):
        grants.setdefault(staff_id, []).append((role, code))
    return [(person, sorted(grants.get(person.id, []), key=lambda r: (order.get(r[0], len(ROLES)), r[1])))
            for person in people]


def granted_counters() -> list[str]:
    """Every counter code some staff member holds a counter role for."""
    return sorted(set(db.session.scalars(select(StaffRole.counter_code).where(StaffRole.role == COUNTER))))
