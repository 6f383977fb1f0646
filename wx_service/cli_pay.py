"""`flask --app wsgi pay …`: WeChat Pay operator commands. Each area adds its commands to the
one `pay` group from its own module: orders and refunds (cli_pay_orders), reconciliation
(cli_pay_reconcile)."""
from __future__ import annotations

from flask import Flask


def register_pay_cli(app: Flask) -> None:
    from wx_service.cli_pay_orders import register_order_commands
    from wx_service.cli_pay_reconcile import register_reconcile_commands

    @app.cli.group("pay")
    def pay_group() -> None:
        """WeChat Pay: orders, refunds, reconciliation."""

    register_order_commands(app, pay_group)
    register_reconcile_commands(app, pay_group)
