"""The assembly: `create_app` builds the Flask app from the ground and mounts every edge on it;
`all_metadata` gathers every package's tables (for Alembic and the tests).

Only wsgi.py, migrations/env.py, the tests and the benchmarks import this module.
"""
from __future__ import annotations

import os

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from config import Settings, load_settings
from wx_service.edges import console, content_images, h5, h5_content, h5_reservations, h5_subscriptions, health, pay_notify, webhook
from wx_service.edges.api import mp as mp_api
from wx_service.edges.api import mp_content, mp_reservations, mp_subscriptions
from wx_service.edges.cli import register_cli
from wx_service.edges.webhook import WebhookPipeline
from wx_service.ground.db import Base
from wx_service.ground.extensions import Services
from wx_service.ground.logs import configure_logging


class _CookielessSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, minus the set-up for requests that carry no cookie at all
    (WeChat's pushes and pay notifications, the mini-program API): they get the same empty
    session Flask would give them, without building a signing serializer per request."""

    def open_session(self, app: Flask, request):  # type: ignore[override]
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when not given)."""
    settings = settings or load_settings()
    app = Flask(__name__, instance_relative_config=False)
    app.config["SECRET_KEY"] = settings.SECRET_KEY
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # nothing the service takes is larger
    app.session_interface = _CookielessSessions()

    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL)

    if settings.DATABASE_URL.startswith("sqlite:///") and not settings.DATABASE_URL.startswith("sqlite:////"):
        os.makedirs(os.path.dirname(settings.DATABASE_URL[len("sqlite:///"):]) or ".", exist_ok=True)

    app.extensions["wx"] = Services(app, settings)

    app.extensions["wx_webhook"] = WebhookPipeline(app)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(mp_api.bp, url_prefix="/api/mp")
    app.register_blueprint(mp_reservations.bp, url_prefix="/api/mp")  # services, bookings, holds
    app.register_blueprint(mp_content.bp, url_prefix="/api/mp")  # stores, brands, activities, new arrivals, discounts
    app.register_blueprint(mp_subscriptions.bp, url_prefix="/api/mp")  # brand subscriptions
    pay_notify.init_app(app, settings)
    console.init_app(app)
    app.register_blueprint(h5.bp)  # the OA's own pages: web authorization + JSAPI pay
    app.register_blueprint(h5_reservations.bp)  # ...and the reservation pages
    app.register_blueprint(content_images.bp)  # content pictures, public at stable URLs
    app.register_blueprint(h5_content.bp)  # ...and the store's content: activities, brands
    app.register_blueprint(h5_subscriptions.bp)  # ...and brand subscriptions

    if settings.WECHAT_EMULATOR:
        # Imported only when asked for: production never loads the emulator's code.
        from wx_service.edges.emulator import mount_emulator

        mount_emulator(app)

    register_cli(app)

    @app.teardown_appcontext
    def _release_session(_exc: BaseException | None) -> None:
        app.extensions["wx"].db.session.remove()

    return app


def all_metadata():
    """Every table of every package, for Alembic's autogenerate and the tests' schema checks."""
    import marketing.models  # noqa: F401
    import members.models  # noqa: F401
    import payments.models  # noqa: F401
    import reservations.models  # noqa: F401
    import service_desk.models  # noqa: F401
    import wx_service.ground.models  # noqa: F401

    return Base.metadata
