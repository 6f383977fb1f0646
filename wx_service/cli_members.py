"""Operator commands for members: points adjustments and approvals, coupons, the scheduler."""
from __future__ import annotations

from flask import Flask


def register_member_cli(app: Flask) -> None:
    """Commands are added to `app.cli` here."""
