"""Placeholder for the `pay` commands of this area (issue 4)."""
from __future__ import annotations

import click
from flask import Flask


def register_reconcile_commands(app: Flask, group: click.Group) -> None:
    """Add this area's commands to the `pay` group."""
