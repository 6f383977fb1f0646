"""Operator commands for the WeChat member card."""
from __future__ import annotations

from flask import Flask


def register_card_cli(app: Flask) -> None:
    """Commands are added to `app.cli` here."""
