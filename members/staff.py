"""Store staff who sign in to the console: passwords (hashed by werkzeug), never stored plain."""
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


ADMIN, COUNTER = "admin", "counter"
ROLES = (ADMIN, COUNTER)


def grant_role(username: str, role: str, counter_code: str = "", *, by_staff_id: int | None = None,
               detail: str = "") -> StaffRole:
    """Give a staff member a role (`counter` needs the counter's code). Idempotent. Flushes.
    A new grant is audited as `role.grant` by `by_staff_id` (None: a CLI run, detail "cli")."""
    if role not in ROLES:
        raise ValueError(f"role is one of {', '.join(ROLES)}")
    if (role == COUNTER) != bool(counter_code):
        raise ValueError("the counter role names one counter; admin names none")
    staff = get_staff(username)
    if staff is None:
        raise LookupError(f"no staff member {username!r}")
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
