"""Fixtures: one app per test session, served over real HTTP with the emulator mounted.

Embedded defaults (in-memory SQLite, in-process Redis and queue) unless DATABASE_URL and
REDIS_URL are set, which is how CI runs the suite against real Postgres and Redis.
"""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import requests
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from werkzeug.serving import make_server

from config import load_settings
from wx_service.app import all_metadata, create_app
from wx_service.ground.db import upgrade_database

# The fuzz suite's budgets (tests/fuzz): `ci` is bounded and derandomized, so CI is fast and
# repeatable; `long` is the large random run that bench/fuzz_entry_points.py drives
# (`pytest tests/fuzz --hypothesis-profile long`). Fixtures here are set up once per test and
# shared by its examples on purpose (a signed-in session, a payment configuration).
_FUZZ = dict(deadline=None, print_blob=True,
             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                    HealthCheck.data_too_large, HealthCheck.filter_too_much])
hypothesis_settings.register_profile("ci", max_examples=40, derandomize=True, database=None, **_FUZZ)
hypothesis_settings.register_profile("long", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "4000")), **_FUZZ)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REAL_DB = bool(os.environ.get("DATABASE_URL"))
REAL_REDIS = bool(os.environ.get("REDIS_URL"))

requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="needs a real Postgres (set DATABASE_URL, as .ci/run does)")
requires_redis = pytest.mark.skipif(
    not REAL_REDIS, reason="needs a real Redis shared between processes (set REDIS_URL, as .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_env() -> dict[str, str]:
    env = {"APP_ENV": "test"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


@pytest.fixture(scope="session")
def live_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def base_url(live_port: int) -> str:
    return f"http://127.0.0.1:{live_port}"


@pytest.fixture(scope="session")
def settings(base_url: str, tmp_path_factory):
    from payments.demo_keys import ensure_demo_merchant

    # Payments on, against the emulated WeChat Pay: a made-up merchant whose keys live in a
    # temporary folder, and the emulator's platform key that the merchant's certificate store trusts.
    overrides: dict = {"WECHAT_API_BASE": f"{base_url}/_emulator",
                       **ensure_demo_merchant(tmp_path_factory.mktemp("wxpay")),
                       "WXPAY_API_BASE": f"{base_url}/_emulator/pay", "WXPAY_NOTIFY_URL_BASE": base_url}
    if not REAL_DB:
        # A file, not :memory:, so that each thread (webhook, jobs) has its own connection and
        # transactions stay apart as they do on Postgres.
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    return load_settings(_test_env(), **overrides)


@pytest.fixture(scope="session")
def app(settings, live_port: int):
    application = create_app(settings)
    db = application.extensions["wx"].db
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade_database(settings.DATABASE_URL)
    server = make_server("127.0.0.1", live_port, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{live_port}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield application
    server.shutdown()
    db.dispose()


@pytest.fixture(autouse=True)
def clean_state(request):
    """Every test starts with empty tables, an empty Redis and a fresh emulator."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    wx = application.extensions["wx"]
    _wait_jobs(application)
    tables = [t.name for t in reversed(all_metadata().sorted_tables)]
    with wx.db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    wx.redis.flushdb()
    emulator = application.extensions["wx_emulator"]
    emulator.reset()
    emulator.push_mode = "safe"
    emulator.push_url = None  # the next request through the live server sets it back to /wechat
    emulator.clock_offset = 0.0
    queue = wx.queue
    if hasattr(queue, "failed"):
        queue.failed.clear()
        queue.completed.clear()
    yield
    _wait_jobs(application)


def _wait_jobs(application) -> None:
    queue = application.extensions["wx"].queue
    if hasattr(queue, "wait_idle"):
        queue.wait_idle(timeout=15)


@pytest.fixture
def emulator(app):
    return app.extensions["wx_emulator"]


@pytest.fixture
def wx(app):
    return app.extensions["wx"]


@pytest.fixture
def run_jobs(app):
    """Run the queued jobs to completion, whichever queue backs the app."""
    def _run() -> None:
        queue = app.extensions["wx"].queue
        if hasattr(queue, "wait_idle"):
            assert queue.wait_idle(timeout=15), "jobs did not finish"
        else:
            from rq import SimpleWorker

            from wx_service.ground.queue import QUEUE_NAME

            with app.app_context():
                SimpleWorker([QUEUE_NAME], connection=app.extensions["wx"].redis).work(burst=True, with_scheduler=False)
    return _run
