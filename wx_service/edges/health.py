"""`GET /healthz`: is this process able to serve (database and Redis answer)?"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from wx_service.ground.extensions import services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks: dict[str, str] = {}
    wx = services()
    try:
        with wx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not healthy", and says which
        log.warning("health: database check failed: %s", exc)
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        wx.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("health: redis check failed: %s", exc)
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", checks=checks), 200 if healthy else 503
