"""The emulator playing WeChat's card (卡券) APIs: card/create, card/update, member card activation
and user info, updateuser, code get/consume, card QR codes."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("emulator_card_api", __name__)
