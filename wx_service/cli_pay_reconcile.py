"""`flask --app wsgi pay reconcile | differences | resolve`: the daily reconciliation by hand.

`pay reconcile` exits 0 when the day matched, 1 when there are differences, 2 when it could not
be done (bill not ready, WeChat unreachable, bill refused), so a cron wrapper can tell them apart.
Each command is one transaction; the run is committed before the exit code is set.
"""
from __future__ import annotations

import json

import click
from flask import Flask
from sqlalchemy import select

EXIT_MATCHED, EXIT_DIFFERENCES, EXIT_FAILED = 0, 1, 2


def describe(difference) -> str:
    """One report line: id, kind, order[/refund] number, ours vs WeChat's amount and state."""
    from payments.bill import fen_to_yuan
    from payments.reconciliation import Kind

    def side(text: str) -> str:
        if not text:
            return "-"
        data = json.loads(text)
        amount = data.get("amount_fen")
        shown = fen_to_yuan(amount) if isinstance(amount, int) else "?"
        state = data.get("state") or data.get("status") or data.get("refund_status") or data.get("trade_state")
        extra = ""
        if difference.kind == Kind.TRANSACTION_ID.value:
            extra = " " + str(data.get("refund_id") or data.get("transaction_id") or "-")
        elif difference.kind == Kind.DATE.value:
            extra = " " + str(data.get("succeeded_at") or data.get("paid_at") or data.get("trade_time"))[:10]
        return f"{shown} {state}{extra}"

    number = difference.out_trade_no + (f" / {difference.out_refund_no}" if difference.out_refund_no else "")
    line = (f"#{difference.id:<5} {difference.kind:<15} {number:<34} "
            f"ours: {side(difference.ours):<26} WeChat: {side(difference.wechat)}")
    if difference.resolved_at is not None:
        line += f"  [resolved: {difference.resolution}]"
    return line


def _report(run, rows) -> list[str]:
    lines = [f"reconciliation {run.bill_date} (run {run.id}): {run.status}",
             f"  WeChat rows {run.wechat_rows}, our rows {run.our_rows}, differences {run.differences}"]
    if run.error:
        lines.append(f"  error: {run.error}")
    lines.extend("  " + describe(d) for d in rows)
    return lines


def register_reconcile_commands(app: Flask, group: click.Group) -> None:
    """Add this area's commands to the `pay` group."""

    def uow():
        return app.extensions["wx"].db.unit_of_work()

    @group.command("reconcile")
    @click.option("--date", "bill_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="Beijing date of the bill (default: yesterday in Beijing).")
    @click.pass_context
    def reconcile(ctx: click.Context, bill_date) -> None:
        """Download WeChat's trade bill for a day and report every difference with our books."""
        from payments import reconciliation as rec
        from payments.config import PaymentsOff
        from payments.models import ReconciliationDifference

        day = bill_date.date().isoformat() if bill_date else rec.beijing_yesterday()
        try:
            with uow() as session:
                run = rec.reconcile_day(day)
                rows = list(session.scalars(select(ReconciliationDifference)
                                            .where(ReconciliationDifference.run_id == run.id)
                                            .order_by(ReconciliationDifference.id)))
                lines = _report(run, rows)
                status = run.status
        except (rec.BillNotReady, rec.BillUnavailable, PaymentsOff) as exc:
            click.echo(f"reconciliation {day}: not done: {exc}", err=True)
            ctx.exit(EXIT_FAILED)
        for line in lines:
            click.echo(line)
        ctx.exit({rec.RunStatus.MATCHED.value: EXIT_MATCHED,
                  rec.RunStatus.DIFFERENCES.value: EXIT_DIFFERENCES}.get(status, EXIT_FAILED))

    @group.command("differences")
    @click.option("--open", "open_only", is_flag=True, help="Only differences not yet resolved.")
    @click.option("--date", "bill_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="Only this Beijing date.")
    @click.option("--run", "run_id", type=int, default=None,
                  help="An earlier run (default: the newest run of each day).")
    def differences(open_only: bool, bill_date, run_id: int | None) -> None:
        """List the differences found by the newest run of each day."""
        from payments import reconciliation as rec

        with uow():
            found = rec.differences(open_only=open_only, run_id=run_id,
                                    bill_date=bill_date.date().isoformat() if bill_date else None)
            lines = [f"{run.bill_date} run {run.id}  {describe(d)}" for d, run in found]
        for line in lines:
            click.echo(line)
        click.echo(f"{len(lines)} difference(s)" + (" open" if open_only else ""))

    @group.command("resolve")
    @click.argument("difference_id", type=int)
    @click.option("--note", required=True, help="What was found and done about it.")
    @click.option("--staff", "username", default=None, help="The staff member resolving it.")
    def resolve(difference_id: int, note: str, username: str | None) -> None:
        """Mark one difference resolved with a note (it stays listed, with the note)."""
        from members.models import Staff
        from payments import reconciliation as rec
        from wx_service.extensions import db

        try:
            with uow():
                staff_id = None
                if username:
                    staff = db.session.scalar(select(Staff).where(Staff.username == username))
                    if staff is None or not staff.active:
                        raise click.ClickException(f"no active staff member {username!r}")
                    staff_id = staff.id
                difference = rec.resolve_difference(difference_id, note, staff_id)
                line = describe(difference)
        except rec.ReconciliationError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"resolved: {line}")
