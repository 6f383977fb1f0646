"""The emulator playing WeChat's mini-program server APIs: code2Session and the phone number."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("emulator_mp_api", __name__)
