"""Placeholder: the cashier page is being built (see issue 4)."""
from __future__ import annotations

from flask import Blueprint

from wx_service.console.auth import staff_required

bp = Blueprint("console_cashier", __name__, url_prefix="/console/cashier", template_folder="templates")


@bp.get("/")
@staff_required
def index():
    return "cashier: not built yet", 501
