"""The mini-program's JSON API: login, phone binding, profile, level progress, points, coupons."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("mp_api", __name__)
