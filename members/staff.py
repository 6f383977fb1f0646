"""Store staff who sign in to the console: passwords (hashed by werkzeug), never stored plain, and
the roles that say which console pages each may use."""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from members import audit
from members.models import Staff, StaffRole
from wx_service.ground.extensions import db

MIN_PASSWORD_LENGTH = 8
# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def get_staff(username: str) -> Staff | None:
    return db.session.scalar(select(Staff).where(Staff.username == username))


def set_password(username: str, password: str) -> Staff:
    """Set (or reset) a staff member's console password. Flushes."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    staff = get_staff(username)
    if staff is None:
        raise LookupError(f"no staff member {username!r}")
    staff.password_hash = generate_password_hash(password)
    db.session.flush()
    return staff


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
                     detail=detail or (audit.CLI if by_staff_id is None else ""))
    return found


def revoke_role(username: str, role: str, counter_code: str = "", *, by_staff_id: int | None = None,
                detail: str = "") -> int:
    """Take a role away; for `counter` without a code, every counter's. The number of grants
    removed (0 when there was none: revoking twice is harmless). Flushes. A removal is audited as
    `role.revoke`."""
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    if counter_code and role != COUNTER:
        raise ValueError(f"the {role} role names no counter")
    staff = _staff_or_refuse(username)
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
                 after={"roles": _role_names(staff.id)}, detail=detail or (audit.CLI if by_staff_id is None else ""))
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
