"""Console sign-in: a staff username and password, a signed session cookie, CSRF on every write.

Why a session cookie and not tokens: the console is a few server-rendered pages used from the
store's own browsers; Flask's signed cookie (HttpOnly, SameSite=Lax, Secure in production) is the
smallest thing that is safe. Every non-GET request must echo the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`), so another site cannot make a till charge a shopper.
Repeated failures for one username lock it out for 15 minutes (counted in Redis).

A session is only as good as its staff row: every request re-reads it (one primary-key SELECT), so
a deactivated member is signed out at their next request, and a session signed in under an older
`session_epoch` (before a deactivation or a password reset) is refused too, so neither a
reactivation nor a new password revives an old cookie. An event stream already open runs on until
it is closed (it holds no database connection); its next reconnect is refused.

Roles: every console route declares who may use it, with exactly one of `@roles("cashier", ...)`
(those roles, and an admin always), `@any_staff` (anyone signed in: home, sign-out) or `@public`
(the sign-in page). The declaration is kept on the view (`CONSOLE_RULE`), and
tests/e2e/test_console_roles.py walks the URL map: a route without one fails the suite, and so does
a role reaching a route its table says it must not. A refusal is 403 with the roles it needs, JSON
under /api/, a page otherwise, marked `X-Console-Refused: role` (the desk's and the reservations'
own 403s, e.g. an admin without an agent row, are the domain's word and carry no such mark).
"""
from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, session, url_for

from members import staff as staff_service
from wx_service.ground import redis_keys
from wx_service.ground.extensions import db, redis, services

bp = Blueprint("console_auth", __name__, url_prefix="/console", template_folder="templates")

MAX_FAILURES = 10

# The attribute a route's view carries: a frozenset of role names, or one of these two.
CONSOLE_RULE = "console_rule"
PUBLIC, ANY_STAFF = "public", "any staff"
REFUSED_HEADER = "X-Console-Refused"
# The staff member's session epoch when this session signed in (members.models.Staff.session_epoch).
EPOCH = "staff_epoch"


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def _csrf_ok() -> bool:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "current_staff": lambda: g.get("staff"), "staff_may": staff_may}


def staff_may(*needed: str) -> bool:
    """Whether the signed-in staff member holds one of `needed` (or is an admin): for templates
    that show links only to pages the reader may open."""
    held = _held_roles()
    return held is not None and staff_service.may(held, needed)


def _held_roles() -> frozenset[str] | None:
    if g.get("staff") is None:
        return None
    if "staff_roles" not in g:
        g.staff_roles = staff_service.roles_of(g.staff.id)
    return g.staff_roles


def staff_required(view: Callable) -> Callable:
    """Pages redirect to sign-in; JSON calls (under /console/api/) answer 401. Writes need CSRF."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        staff_id = session.get("staff_id")
        staff = None
        if staff_id is not None:
            from members.models import Staff

            staff = db.session.get(Staff, staff_id)
        if staff is None or not staff.active or session.get(EPOCH, 0) != staff.session_epoch:
            session.pop("staff_id", None)
            if "/api/" in request.path:
                return jsonify(error="sign in to the console first"), 401
            return redirect(url_for("console_auth.login", next=request.full_path.rstrip("?")))
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok():
            return jsonify(error="missing or wrong CSRF token; reload the page"), 403
        g.staff, g.staff_id = staff, staff.id
        return view(*args, **kwargs)
    return wrapped


def _declare(view: Callable, rule: object) -> Callable:
    setattr(view, CONSOLE_RULE, rule)
    return view


def public(view: Callable) -> Callable:
    """Open to anyone (only the sign-in page)."""
    return _declare(view, PUBLIC)


def any_staff(view: Callable) -> Callable:
    """Any signed-in, active staff member, whatever their roles (home, sign-out)."""
    return _declare(staff_required(view), ANY_STAFF)


def forbidden(needed: frozenset[str]) -> Response:
    """The 403 for a staff member without the role: what it needs and who can grant it."""
    others = sorted(needed - {staff_service.ADMIN}, key=staff_service.ROLES.index)
    names = " or ".join(staff_service.ROLE_LABELS[role] for role in others)
    who = f"{names} (and admins)" if others else "admins"
    reason = (f"this part of the console is for {who}; you do not hold that role. "
              f"Ask an admin to grant it (flask staff grant-role {g.staff.username} ROLE).")
    if "/api/" in request.path:
        response = jsonify(error=reason, needs=sorted(needed))
    else:
        response = Response(render_template("console/forbidden.html", reason=reason))
    response.status_code = 403
    response.headers[REFUSED_HEADER] = "role"
    return response


def roles(*needed: str) -> Callable[[Callable], Callable]:
    """Signed-in staff holding one of `needed` (an admin always): the route's declared rule."""
    unknown = set(needed) - set(staff_service.ROLES)
    if not needed or unknown:
        raise ValueError(f"roles() names one or more of {staff_service.ROLES}, not {sorted(unknown)}")
    rule = frozenset(needed)

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any):
            if not staff_service.may(_held_roles() or frozenset(), rule):
                return forbidden(rule)
            return view(*args, **kwargs)
        return _declare(staff_required(checked), rule)
    return decorate


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no //host, no scheme): no open redirect after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console_auth.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    error = ""
    if request.method == "POST":
        if not _csrf_ok():
            abort(400, "missing or wrong CSRF token; reload the page")
        username = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:256]
        key = redis_keys.console_login_failures(services().settings.WECHAT_APPID, username)
        failures = int(redis().get(key.name) or 0)
        staff = None if failures >= MAX_FAILURES else staff_service.authenticate(username, password)
        if staff is not None:
            redis().delete(key.name)
            session.clear()
            session.permanent = True
            session["staff_id"] = staff.id
            session[EPOCH] = staff.session_epoch
            csrf_token()
            return redirect(_safe_next(request.args.get("next")))
        if failures >= MAX_FAILURES:
            error = "Too many failed attempts: try again in 15 minutes."
        else:
            pipe = redis().pipeline()
            pipe.incr(key.name)
            pipe.expire(key.name, key.ttl)
            pipe.execute()
            error = "Wrong username or password."
    return render_template("console/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@any_staff
def logout():
    session.clear()
    return redirect(url_for("console_auth.login"))


@bp.get("/")
@any_staff
def home():
    return render_template("console/home.html")
