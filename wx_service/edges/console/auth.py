"""Console sign-in: a staff username and password, a signed session cookie, CSRF on every write.

Why a session cookie and not tokens: the console is a few server-rendered pages used from the
store's own browsers; Flask's signed cookie (HttpOnly, SameSite=Lax, Secure in production) is the
smallest thing that is safe. Every non-GET request must echo the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`), so another site cannot make a till charge a shopper.
Repeated failures for one username lock it out for 15 minutes (counted in Redis).
"""
from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, session, url_for

from members import staff as staff_service
from wx_service.ground import redis_keys
from wx_service.ground.extensions import db, redis, services

bp = Blueprint("console_auth", __name__, url_prefix="/console", template_folder="templates")

MAX_FAILURES = 10


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
    return {"csrf_token": csrf_token, "current_staff": lambda: g.get("staff")}


def staff_required(view: Callable) -> Callable:
    """Pages redirect to sign-in; JSON calls (under /console/api/) answer 401. Writes need CSRF."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        staff_id = session.get("staff_id")
        staff = None
        if staff_id is not None:
            from members.models import Staff

            staff = db.session.get(Staff, staff_id)
        if staff is None or not staff.active:
            session.pop("staff_id", None)
            if "/api/" in request.path:
                return jsonify(error="sign in to the console first"), 401
            return redirect(url_for("console_auth.login", next=request.full_path.rstrip("?")))
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok():
            return jsonify(error="missing or wrong CSRF token; reload the page"), 403
        g.staff = staff
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no //host, no scheme): no open redirect after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console_auth.home")


@bp.route("/login", methods=["GET", "POST"])
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
@staff_required
def logout():
    session.clear()
    return redirect(url_for("console_auth.login"))


@bp.get("/")
@staff_required
def home():
    return render_template("console/home.html")
