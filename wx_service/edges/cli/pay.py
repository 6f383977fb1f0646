"""`flask --app wsgi pay …`: WeChat Pay operator commands, in one `pay` group.

- Orders and refunds: refund, order, orders, close, sweep. Each command is one unit of work (the
  jobs it runs commit as they go, see payments/jobs.py), prints what happened, and exits non-zero
  with the reason when the rules or WeChat refuse (click.ClickException). Money is shown in yuan,
  times in Beijing time.
- Reconciliation by hand: reconcile, differences, resolve. `pay reconcile` exits 0 when the day
  matched, 1 when there are differences, 2 when it could not be done (bill not ready, WeChat
  unreachable, bill refused), so a cron wrapper can tell them apart. The run is committed before
  the exit code is set.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import click
from flask import Flask
from sqlalchemy import select

from payments import money

SHANGHAI = timezone(timedelta(hours=8))
MAX_REFUND_FEN = 10**11  # no bound of its own: the order's paid amount is the real limit
SETTLE_WAIT_SECONDS = 5.0  # how long `pay refund` waits for WeChat to settle, in-process queue only
EXIT_MATCHED, EXIT_DIFFERENCES, EXIT_FAILED = 0, 1, 2  # `pay reconcile`'s exit codes


def yuan_to_fen(text: str) -> int:
    """'128', '128.5', '128.50' -> fen (payments.money); anything else is a click usage error."""
    try:
        return money.parse_yuan(text, max_fen=MAX_REFUND_FEN)
    except money.AmountError as exc:
        raise click.BadParameter(f"{text!r}: {exc}") from None


_yuan = money.format_fen


def _bj(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _staff_id(username: str) -> int:
    """An active staff member's id, by username (the CLI's --staff)."""
    from sqlalchemy import select

    from members.models import Staff
    from wx_service.ground.extensions import db

    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    if staff is None or not staff.active:
        raise click.ClickException(f"no active staff member {username!r}")
    return staff.id


def _order_commands(app: Flask, group: click.Group) -> None:
    """Orders and refunds."""

    def uow():
        return app.extensions["wx"].db.unit_of_work()

    def payments_on() -> None:
        from payments.config import PaymentsOff, current_payment_config

        try:
            current_payment_config()
        except PaymentsOff as exc:
            raise click.ClickException(str(exc)) from None

    def wait_for_jobs() -> bool:
        """In-process queue (demo, embedded): let queued jobs run before the process exits.
        With RQ the workers run them; False says so."""
        queue = app.extensions["wx"].queue
        if hasattr(queue, "wait_idle"):
            queue.wait_idle(timeout=30)
            return True
        return False

    @group.command("refund", context_settings={"ignore_unknown_options": True})
    @click.argument("out_trade_no")
    @click.argument("amount_yuan")
    @click.option("--reason", required=True, help="Why (WeChat shows it to the shopper; at most 80 characters).")
    @click.option("--refund-no", "refund_no", default=None, help="Our refund number (default: a new R… number). "
                  "The same number again is the same refund, never a second one.")
    @click.option("--staff", "username", default=None,
                  help="Who asks for it (for the audit log; without it the entry says `cli`).")
    def refund_cmd(out_trade_no: str, amount_yuan: str, reason: str, refund_no: str | None,
                   username: str | None) -> None:
        """Refund AMOUNT_YUAN of a paid order (never more than was paid, in total)."""
        from payments import jobs, service

        payments_on()
        amount_fen = yuan_to_fen(amount_yuan)
        try:
            with uow():
                staff_id = _staff_id(username) if username else None
                refund = jobs.request_refund(out_trade_no, amount_fen, reason, refund_no, staff_id=staff_id)
                number, status, fen = refund.out_refund_no, refund.status, refund.amount_fen
        except (service.UnknownOrder, service.RefundRefused) as exc:
            raise click.ClickException(f"refused: {exc}") from None
        click.echo(f"refund {number} of order {out_trade_no}: {_yuan(fen)} yuan, {status}")
        if status != "PROCESSING":
            return
        if not wait_for_jobs():
            click.echo("queued: a worker sends it to WeChat; see `pay order " + out_trade_no + "`")
            return
        deadline = time.monotonic() + SETTLE_WAIT_SECONDS
        while True:
            status = _refund_status(number)
            if status != "PROCESSING" or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        click.echo(f"refund {number}: {status}" + (" (WeChat has not settled it yet; the notification or "
                                                     "`pay sweep` will)" if status == "PROCESSING" else ""))

    def _refund_status(number: str) -> str:
        from sqlalchemy import select

        from payments.models import Refund
        from wx_service.ground.extensions import db

        with uow():
            return db.session.scalar(select(Refund.status).where(Refund.out_refund_no == number)) or "?"

    @group.command("order")
    @click.argument("out_trade_no")
    def order_cmd(out_trade_no: str) -> None:
        """One order: its state, every notification and query answer received, refunds, points."""
        from sqlalchemy import select

        from members.models import PointsEntry
        from payments.models import Order, PaymentTransaction, Refund
        from wx_service.ground.extensions import db

        with uow():
            order = db.session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
            if order is None:
                raise click.ClickException(f"no order {out_trade_no}")
            txs = list(db.session.scalars(select(PaymentTransaction).where(PaymentTransaction.order_id == order.id)
                                          .order_by(PaymentTransaction.id)))
            refunds = list(db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)))
            points = list(db.session.scalars(select(PointsEntry).where(PointsEntry.ref_key == out_trade_no)
                                             .order_by(PointsEntry.id)))
            lines = [
                f"order {order.out_trade_no}  {order.kind}  {order.state}"
                + ("  NEEDS RECONCILIATION" if order.needs_reconcile else ""),
                f"  amount {_yuan(order.amount_fen)} yuan {order.currency}  counter {order.counter or '-'}"
                f"  source {order.source or '-'}  {order.description}",
                f"  created {_bj(order.created_at)}  expires {_bj(order.expires_at)}  paid {_bj(order.paid_at)}"
                f"  closed {_bj(order.closed_at)}  checked {_bj(order.checked_at)}",
                f"  transaction {order.transaction_id or '-'}  payer {order.payer_openid or '-'}"
                f"  member {order.member_id or '-'}",
                f"transactions ({len(txs)}):",
                *[f"  {_bj(t.received_at)}  {t.kind:<11} {t.trade_state:<16} {t.outcome:<10} "
                  f"{t.notification_id or '(our query or call)'}" for t in txs],
                f"refunds ({len(refunds)}):",
                *[f"  {r.out_refund_no}  {_yuan(r.amount_fen)} yuan  {r.status}"
                  + ("  NEEDS RECONCILIATION" if r.needs_reconcile else "")
                  + f"  asked {_bj(r.created_at)}  succeeded {_bj(r.succeeded_at)}  {r.reason}" for r in refunds],
                "points:" + ("" if points else " none"),
                *[f"  member {p.member_id}  {p.delta:+d}  {p.reason}  {_bj(p.created_at)}  {p.note}" for p in points],
            ]
        click.echo("\n".join(lines))

    @group.command("orders")
    @click.option("--state", type=click.Choice(["CREATED", "USERPAYING", "PAYERROR", "PAID", "PARTIALLY_REFUNDED",
                                                "REFUNDED", "CLOSED", "REVERSED"], case_sensitive=False))
    @click.option("--counter", default=None)
    @click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="Orders created that day (Beijing time).")
    @click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
    def orders_cmd(state: str | None, counter: str | None, day: datetime | None, limit: int) -> None:
        """Orders, newest first, as a table."""
        from sqlalchemy import select

        from payments.models import Order
        from wx_service.ground.extensions import db

        query = select(Order).order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
        if state:
            query = query.where(Order.state == state.upper())
        if counter:
            query = query.where(Order.counter == counter)
        if day is not None:
            start = day.replace(tzinfo=SHANGHAI)
            query = query.where(Order.created_at >= start, Order.created_at < start + timedelta(days=1))
        with uow():
            rows = list(db.session.scalars(query))
            table = [(o.out_trade_no, o.kind, o.state + ("*" if o.needs_reconcile else ""), _yuan(o.amount_fen),
                      o.counter or "-", _bj(o.created_at), _bj(o.paid_at)) for o in rows]
        header = ("out_trade_no", "kind", "state", "yuan", "counter", "created (Beijing)", "paid (Beijing)")
        widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
        for row in [header, *table]:
            click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        click.echo(f"{len(table)} order(s)" + ("; * needs reconciliation" if any(o.needs_reconcile for o in rows) else ""))

    @group.command("close")
    @click.argument("out_trade_no")
    def close_cmd(out_trade_no: str) -> None:
        """End an unpaid order at WeChat now (a payment code is reversed). A paid one is refunded instead."""
        from payments import jobs, service

        payments_on()
        try:
            with uow():
                state = jobs.close_order(out_trade_no)
        except service.UnknownOrder as exc:
            raise click.ClickException(str(exc)) from None
        except jobs.RetryLater as exc:
            raise click.ClickException(f"WeChat did not settle it, try again shortly: {exc}") from None
        if state in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED"):
            click.echo(f"order {out_trade_no} is {state}: it was paid, so it cannot be closed (refund it instead)")
        else:
            click.echo(f"order {out_trade_no}: {state}")

    @group.command("sweep")
    def sweep_cmd() -> None:
        """Run the sweeps now: close expired QR/JSAPI orders, ask WeChat about stale ones and refunds."""
        from payments import jobs

        payments_on()
        with uow():
            expired = jobs.close_expired_orders()
        with uow():
            checked = jobs.query_stale_orders()
        click.echo(f"expired orders handled: {expired}")
        click.echo(f"stale orders and refunds checked: {checked}")
        if expired and not wait_for_jobs():
            click.echo("the closes are queued for the workers")


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


def _reconcile_commands(app: Flask, group: click.Group) -> None:
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
        from wx_service.ground.extensions import db

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


def register(app: Flask) -> None:
    @app.cli.group("pay")
    def pay_group() -> None:
        """WeChat Pay: orders, refunds, reconciliation."""

    _order_commands(app, pay_group)
    _reconcile_commands(app, pay_group)
