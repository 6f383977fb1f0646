"""The staff console (/console): sign-in, then the pages staff work in (counter QR, cashier, refunds,
the customer-service desk, the counters' reservations, the store's content, brand news, the funnel,
the audit log, the staff page).

Each page is its own blueprint module under this package; `init_app` mounts them all. Every route
declares who may use it (`auth.roles(...)`, `auth.any_staff` or `auth.public`), which brings the one
sign-in guard and the one CSRF check for every write; tests/e2e/test_console_roles.py holds the
table of which role reaches which route.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from wx_service.edges.console import (
        announcements,
        audit,
        auth,
        cashier,
        content,
        counter,
        desk,
        desk_media,
        desk_stream,
        funnel,
        refunds,
        reservations,
        staff,
    )

    production = app.extensions["wx"].settings.ENV_NAME == "production"
    # A sign-in lasts 12 hours (a shift) from when it was made. The cookie is sent again only when
    # the session changes: a live page's requests re-sending an unchanged (older) cookie could
    # otherwise overwrite what another tab just stored in it, e.g. the OA pages' sign-in state.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=production, PERMANENT_SESSION_LIFETIME=12 * 3600,
                      SESSION_REFRESH_EACH_REQUEST=False)
    app.register_blueprint(auth.bp)
    app.register_blueprint(counter.bp)
    app.register_blueprint(cashier.bp)
    app.register_blueprint(refunds.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(desk_stream.bp)
    app.register_blueprint(desk_media.bp)
    app.register_blueprint(reservations.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(content.bp)
    app.register_blueprint(funnel.bp)
    app.register_blueprint(announcements.bp)
