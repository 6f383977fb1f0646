"""Operator commands, `flask --app wsgi <command>`, one module per area:

- `ops`: the database schema, the job worker and the scheduler;
- `wechat`: the OA's menu and which handler answers which push;
- `members`: staff, points, coupons, benefits, the member card;
- `pay`: orders, refunds, reconciliation;
- `marketing`: parametric QR codes for counters and campaigns;
- `desk`: the customer-service desk's teams and agents;
- `reservations`: services, resources, opening hours and holdable goods;
- `demo`: the demo store and `serve-demo`.

Each command runs in one transaction where it writes, prints what happened, and exits non-zero
with the reason when the rules refuse (click.ClickException).
"""
from __future__ import annotations

from flask import Flask

from wx_service.edges.cli import demo, desk, marketing, members, ops, pay, reservations, wechat


def register_cli(app: Flask) -> None:
    for area in (ops, wechat, members, pay, marketing, desk, reservations, demo):
        area.register(app)
