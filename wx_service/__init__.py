"""The department store's WeChat service: app factory."""
from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from config import Settings, load_settings


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

    from wx_service.logs import configure_logging

    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL)

    if settings.DATABASE_URL.startswith("sqlite:///") and not settings.DATABASE_URL.startswith("sqlite:////"):
        import os

        os.makedirs(os.path.dirname(settings.DATABASE_URL[len("sqlite:///"):]) or ".", exist_ok=True)

    from wx_service.extensions import Services

    app.extensions["wx"] = Services(app, settings)

    from wx_service.webhook import WebhookPipeline, bp as webhook_bp

    app.extensions["wx_webhook"] = WebhookPipeline(app)
    app.register_blueprint(webhook_bp)

    from wx_service.health import bp as health_bp

    app.register_blueprint(health_bp)

    from wx_service.api.mp import bp as mp_api_bp

    app.register_blueprint(mp_api_bp, url_prefix="/api/mp")

    from wx_service import pay_notify

    pay_notify.init_app(app, settings)

    from wx_service import console, h5

    console.init_app(app)
    app.register_blueprint(h5.bp)  # the OA's own pages: web authorization + JSAPI pay

    if settings.WECHAT_EMULATOR:
        from wx_service.emulator import mount_emulator

        mount_emulator(app)

    from wx_service.cli import register_cli

    register_cli(app)

    @app.teardown_appcontext
    def _release_session(_exc: BaseException | None) -> None:
        app.extensions["wx"].db.session.remove()

    return app
