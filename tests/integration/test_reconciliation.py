"""Daily reconciliation against the emulated WeChat Pay: orders placed with the app's own gateway,
paid by the emulated shopper (the notification reaches the app's /pay/notify), refunded through
WeChat; then our books are bent one way or another and the report must list exactly that.

The bill is by Beijing date, so "today" is computed in Asia/Shanghai (the emulator writes the
bill for the date asked, ready or not)."""
from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select

from members.models import Staff
from payments import reconciliation as rec
from payments import service
from payments.bill import SHANGHAI
from payments.config import current_payment_config
from payments.models import Order, ReconciliationDifference, ReconciliationRun, Refund
from tests.integration.members_helpers import uow
from wx_service.ground.db import utcnow
from wx_service.ground.queue import is_transient, run_job


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def wait_for(check, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def beijing_today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def new_no(prefix: str = "RC") -> str:
    return prefix + secrets.token_hex(8).upper()


def gateway(app):
    with app.app_context():
        config = current_payment_config()
        return config, config.gateway(app.extensions["wx"].settings.WECHAT_APPID)


def pay_url(base_url: str) -> str:
    return f"{base_url}/_emulator/pay"


def order_state(app, no: str) -> str | None:
    with uow(app) as session:
        return session.scalar(select(Order.state).where(Order.out_trade_no == no))


def paid_order(app, base_url: str, fen: int, *, no: str | None = None) -> str:
    """Ours, placed at WeChat, paid by the shopper; returns once /pay/notify has applied it."""
    no = no or new_no()
    config, gw = gateway(app)
    with uow(app):
        service.create_order(no, "native", fen, app.extensions["wx"].settings.WECHAT_APPID,
                             description="对账测试")
    gw.native(no, "对账测试", fen, config.notify_url)
    r = requests.post(f"{pay_url(base_url)}/control/pay", json={"out_trade_no": no}, timeout=5)
    assert r.status_code == 200, r.text
    wait_for(lambda: order_state(app, no) == "PAID", f"{no} paid")
    return no


def unknown_paid_order(app, base_url: str, fen: int) -> str:
    """Placed and paid at WeChat without any record of ours (another till, say)."""
    no = new_no("XX")
    config, gw = gateway(app)
    gw.native(no, "别处的订单", fen, config.notify_url)
    r = requests.post(f"{pay_url(base_url)}/control/pay", json={"out_trade_no": no}, timeout=5)
    assert r.status_code == 200, r.text
    return no


def refunded(app, no: str, fen: int, total: int) -> str:
    refund_no = new_no("RF")
    config, gw = gateway(app)
    with uow(app):
        service.request_refund(no, refund_no, fen)
    gw.refund(refund_no, no, fen, total, notify_url=config.refund_notify_url)

    def done() -> bool:
        with uow(app) as session:
            return session.scalar(select(Refund.status).where(Refund.out_refund_no == refund_no)) == "SUCCESS"
    wait_for(done, f"refund {refund_no}")
    return refund_no


def books(app) -> list[tuple]:
    """Everything reconciliation must never change."""
    with uow(app) as session:
        orders = [(o.out_trade_no, o.state, o.amount_fen, o.transaction_id, o.paid_at, o.needs_reconcile)
                  for o in session.scalars(select(Order).order_by(Order.id))]
        refunds = [(r.out_refund_no, r.status, r.amount_fen, r.refund_id, r.succeeded_at, r.needs_reconcile)
                   for r in session.scalars(select(Refund).order_by(Refund.id))]
    return orders + refunds


def reconcile(app, day: str, **kw) -> dict:
    with uow(app):
        run = rec.reconcile_day(day, **kw)
        return {"id": run.id, "status": run.status, "wechat_rows": run.wechat_rows,
                "our_rows": run.our_rows, "differences": run.differences, "error": run.error}


def found(app, run_id: int) -> set[tuple[str, str, str]]:
    with uow(app) as session:
        return {(d.kind, d.out_trade_no, d.out_refund_no) for d in session.scalars(
            select(ReconciliationDifference).where(ReconciliationDifference.run_id == run_id))}


def difference(app, run_id: int, kind: str, no: str) -> ReconciliationDifference:
    with uow(app) as session:
        return session.scalars(select(ReconciliationDifference).where(
            ReconciliationDifference.run_id == run_id, ReconciliationDifference.kind == kind,
            ReconciliationDifference.out_trade_no == no)).one()


def alter(app, no: str, **values) -> None:
    with uow(app) as session:
        order = session.scalars(select(Order).where(Order.out_trade_no == no)).one()
        for name, value in values.items():
            setattr(order, name, value)


def alter_refund(app, refund_no: str, **values) -> None:
    with uow(app) as session:
        refund = session.scalars(select(Refund).where(Refund.out_refund_no == refund_no)).one()
        for name, value in values.items():
            setattr(refund, name, value)


def same_day_or_skip(day: str) -> None:
    if beijing_today() != day:
        pytest.skip("Beijing midnight passed while the test was paying orders")


def test_a_clean_day_matches_and_the_cli_says_so(app, base_url):
    day = beijing_today()
    paid_order(app, base_url, 1)
    paid_order(app, base_url, 1_234_567)
    third = paid_order(app, base_url, 5_000)
    refunded(app, third, 1_000, 5_000)
    same_day_or_skip(day)
    before = books(app)

    run = reconcile(app, day)
    assert run["status"] == "MATCHED"
    assert (run["wechat_rows"], run["our_rows"], run["differences"]) == (4, 4, 0)
    assert found(app, run["id"]) == set()
    assert books(app) == before

    result = cli(app, "pay", "reconcile", "--date", day)
    assert result.exit_code == 0, result.output
    assert f"reconciliation {day} (run {run['id'] + 1}): MATCHED" in result.output
    assert "WeChat rows 4, our rows 4, differences 0" in result.output
    with uow(app) as session:  # the re-run is a new run; the first stays as history
        assert session.scalar(select(func.count(ReconciliationRun.id))
                              .where(ReconciliationRun.bill_date == day)) == 2


def test_every_kind_of_difference_is_reported_once_and_nothing_is_fixed(app, base_url):
    day = beijing_today()
    appid = app.extensions["wx"].settings.WECHAT_APPID
    held_unpaid = paid_order(app, base_url, 1_500)
    amount = paid_order(app, base_url, 2_000)
    closed = paid_order(app, base_url, 3_000)
    txn = paid_order(app, base_url, 4_000)
    refund_order = paid_order(app, base_url, 5_000)
    refund_pending = refunded(app, refund_order, 500, 5_000)
    refund_amount_order = paid_order(app, base_url, 6_000)
    refund_amount = refunded(app, refund_amount_order, 600, 6_000)
    flagged = paid_order(app, base_url, 7_000)
    dated = paid_order(app, base_url, 8_000)
    clean = paid_order(app, base_url, 12_345)
    stranger = unknown_paid_order(app, base_url, 9_900)
    same_day_or_skip(day)

    # Now bend our books, one way each.
    alter(app, held_unpaid, state="CREATED", paid_at=None, transaction_id=None)
    alter(app, amount, amount_fen=2_100)
    alter(app, closed, state="CLOSED", paid_at=None)
    alter(app, txn, transaction_id="4200000000000000000000000000")
    alter_refund(app, refund_pending, status="PROCESSING", succeeded_at=None)
    alter_refund(app, refund_amount, amount_fen=601)
    alter(app, flagged, needs_reconcile=True)
    alter(app, dated, paid_at=utcnow() - timedelta(days=1))
    only_ours = new_no()
    only_ours_refund = new_no("RF")
    with uow(app) as session:
        order = Order(out_trade_no=only_ours, kind="native", appid=appid, amount_fen=2_500, state="PAID",
                      transaction_id="4200000000000000000000000001", paid_at=utcnow())
        session.add(order)
        session.flush()
        clean_id = session.scalar(select(Order.id).where(Order.out_trade_no == clean))
        session.add(Refund(out_refund_no=only_ours_refund, order_id=clean_id, amount_fen=345,
                           status="SUCCESS", refund_id="5030000000000000000000000001",
                           succeeded_at=utcnow()))
    before = books(app)

    run = reconcile(app, day)
    assert run["status"] == "DIFFERENCES"
    assert found(app, run["id"]) == {
        ("MISSING_OURS", stranger, ""),
        ("MISSING_OURS", held_unpaid, ""),
        ("AMOUNT", amount, ""),
        ("STATE", closed, ""),
        ("TRANSACTION_ID", txn, ""),
        ("MISSING_WECHAT", only_ours, ""),
        ("MISSING_OURS", refund_order, refund_pending),
        ("AMOUNT", refund_amount_order, refund_amount),
        ("MISSING_WECHAT", clean, only_ours_refund),
        ("FLAGGED", flagged, ""),
        ("DATE", dated, ""),
    }
    # 10 payments and 2 refunds at WeChat; ours that day: 7 paid orders (not the unpaid, closed
    # or moved ones; our own one counts) and 2 refunds (not the one set back to PROCESSING)
    assert (run["wechat_rows"], run["our_rows"], run["differences"]) == (12, 9, 11)
    assert books(app) == before  # reported, never fixed

    amount_row = difference(app, run["id"], "AMOUNT", amount)
    assert json.loads(amount_row.ours)["amount_fen"] == 2_100
    assert json.loads(amount_row.wechat)["amount_fen"] == 2_000
    missing = difference(app, run["id"], "MISSING_OURS", stranger)
    assert missing.ours == "" and json.loads(missing.wechat)["transaction_id"].startswith("4200")
    state_row = json.loads(difference(app, run["id"], "STATE", closed).ours)
    assert state_row["state"] == "CLOSED"

    # The CLI report: exit 1, the counts, one line per difference with both sides.
    result = cli(app, "pay", "reconcile", "--date", day)
    assert result.exit_code == 1, result.output
    assert "WeChat rows 12, our rows 9, differences 11" in result.output
    lines = result.output.splitlines()
    line = next(l for l in lines if "AMOUNT" in l and amount in l)
    assert "ours: 21.00 PAID" in line and "WeChat: 20.00 SUCCESS" in line
    line = next(l for l in lines if stranger in l)
    assert "MISSING_OURS" in line and "ours: -" in line and "WeChat: 99.00 SUCCESS" in line
    line = next(l for l in lines if only_ours_refund in l)
    assert "MISSING_WECHAT" in line and "ours: 3.45 SUCCESS" in line and "WeChat: -" in line


def test_differences_are_listed_and_resolved_with_a_note_and_stay(app, base_url):
    day = beijing_today()
    stranger = unknown_paid_order(app, base_url, 1_200)
    mine = paid_order(app, base_url, 800)
    alter(app, mine, amount_fen=801)
    same_day_or_skip(day)
    first = reconcile(app, day)
    assert first["differences"] == 2
    unknown_id = difference(app, first["id"], "MISSING_OURS", stranger).id
    amount_id = difference(app, first["id"], "AMOUNT", mine).id

    with uow(app) as session:
        session.add(Staff(username="lin", name="Lin"))
    with uow(app) as session:
        lin = session.scalar(select(Staff.id).where(Staff.username == "lin"))
        rec.resolve_difference(unknown_id, "其他收银台的订单，已补录", staff_id=lin)
    with uow(app), pytest.raises(rec.ReconciliationError, match="already resolved"):
        rec.resolve_difference(unknown_id, "again")
    with uow(app), pytest.raises(rec.ReconciliationError, match="note"):
        rec.resolve_difference(amount_id, "   ")
    with uow(app), pytest.raises(rec.ReconciliationError, match="no difference"):
        rec.resolve_difference(999_999, "x")

    listed = cli(app, "pay", "differences", "--open", "--date", day)
    assert listed.exit_code == 0, listed.output
    assert mine in listed.output and stranger not in listed.output
    assert "1 difference(s) open" in listed.output
    everything = cli(app, "pay", "differences")
    assert "[resolved: 其他收银台的订单，已补录 (staff lin)]" in everything.output

    done = cli(app, "pay", "resolve", str(amount_id), "--note", "价签错误，已更正")
    assert done.exit_code == 0 and "resolved:" in done.output
    again = cli(app, "pay", "resolve", str(amount_id), "--note", "x")
    assert again.exit_code != 0 and "already resolved" in again.output
    assert cli(app, "pay", "resolve", "999999", "--note", "x").exit_code != 0
    nobody = cli(app, "pay", "resolve", str(amount_id), "--note", "x", "--staff", "nobody")
    assert nobody.exit_code != 0 and "no active staff member" in nobody.output
    assert "0 difference(s) open" in cli(app, "pay", "differences", "--open").output

    # A re-run finds the same differences again (nothing was fixed in the books) and carries the
    # resolutions of identical ones; the first run's rows stay as they were.
    second = reconcile(app, day)
    assert second["id"] != first["id"] and second["differences"] == 2
    assert difference(app, second["id"], "AMOUNT", mine).resolution == (
        f"as resolved in run {first['id']}: 价签错误，已更正")
    assert found(app, first["id"]) == found(app, second["id"])
    # …but one that changed since is open again
    alter(app, mine, amount_fen=802)
    third = reconcile(app, day)
    assert difference(app, third["id"], "AMOUNT", mine).resolved_at is None


def test_a_bill_failing_its_hash_is_a_failed_run(app, base_url):
    day = beijing_today()
    unknown_paid_order(app, base_url, 500)
    same_day_or_skip(day)
    requests.post(f"{pay_url(base_url)}/control/faults", json={"api": "billdownload", "tamper": True},
                  timeout=5).raise_for_status()
    result = cli(app, "pay", "reconcile", "--date", day)
    assert result.exit_code == 2, result.output
    assert "FAILED" in result.output and "SHA1" in result.output
    with uow(app) as session:
        run = session.scalars(select(ReconciliationRun)).one()
        assert run.status == "FAILED" and "SHA1" in run.error and run.finished_at is not None
        assert session.scalar(select(func.count(ReconciliationDifference.id))) == 0


def test_a_bill_that_does_not_add_up_is_a_failed_run_with_the_reason(app, base_url, monkeypatch):
    from wx_service.edges.emulator import pay_api

    real = pay_api.build_trade_bill

    def short_totals(*args):  # WeChat's file with its 订单总金额 one fen short (hash still right)
        content = real(*args)
        if content is None:
            return None
        lines = content.split(b"\r\n")
        fields = lines[-2].split(b",`")
        fields[5] = b"4.99"
        lines[-2] = b",`".join(fields)
        return b"\r\n".join(lines)

    monkeypatch.setattr(pay_api, "build_trade_bill", short_totals)
    day = beijing_today()
    unknown_paid_order(app, base_url, 500)
    same_day_or_skip(day)
    run = reconcile(app, day)
    assert run["status"] == "FAILED"
    assert run["error"] == ("bill unreadable: line 4: the totals row says 订单总金额 4.99, "
                            "the rows add up to 5.00")


def test_a_bill_not_ready_yet_is_retried_not_failed(app, base_url):
    today = beijing_today()
    # Nothing paid today: WeChat answers NO_STATEMENT_EXIST, and today's bill is due tomorrow.
    with uow(app), pytest.raises(rec.BillNotReady) as not_ready:
        rec.reconcile_day(today)
    assert is_transient(not_ready.value)
    result = cli(app, "pay", "reconcile", "--date", today)
    assert result.exit_code == 2 and "not done" in result.output
    # WeChat failing (5xx) is transient too
    requests.post(f"{pay_url(base_url)}/control/faults",
                  json={"api": "tradebill", "code": "SYSTEM_ERROR", "status": 500}, timeout=5)
    with uow(app), pytest.raises(rec.BillUnavailable) as unavailable:
        rec.reconcile_day(today)
    assert is_transient(unavailable.value)
    with uow(app) as session:
        assert session.scalar(select(func.count(ReconciliationRun.id))) == 0


def test_a_past_day_without_a_bill(app):
    day = "2025-03-01"
    ready = datetime(2025, 3, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 Beijing the next day
    # Neither side has anything: WeChat writes no bill for such a day, and that is a match.
    run = reconcile(app, day, now=ready + timedelta(hours=1))
    assert (run["status"], run["wechat_rows"], run["our_rows"]) == ("MATCHED", 0, 0)
    # We hold a payment that day: wait a day for WeChat, then report it missing at WeChat.
    no = new_no()
    with uow(app) as session:
        session.add(Order(out_trade_no=no, kind="native", appid="wx0", amount_fen=990, state="PAID",
                          transaction_id="4200000000000000000000000099",
                          paid_at=datetime(2025, 3, 1, 15, 59, tzinfo=timezone.utc)))  # 23:59 Beijing
    with uow(app), pytest.raises(rec.BillNotReady):
        rec.reconcile_day(day, now=ready + timedelta(hours=1))
    run = reconcile(app, day, now=ready + timedelta(days=1, minutes=1))
    assert run["status"] == "DIFFERENCES" and found(app, run["id"]) == {("MISSING_WECHAT", no, "")}
    # 00:01 Beijing on the 2nd belongs to the next day's bill
    alter(app, no, paid_at=datetime(2025, 3, 1, 16, 1, tzinfo=timezone.utc))
    run = reconcile(app, day, now=ready + timedelta(days=1, minutes=1))
    assert run["status"] == "MATCHED"


def test_the_scheduled_job_reconciles_yesterday_in_beijing(app, monkeypatch):
    # 10:30 Beijing on 2 March: yesterday is 1 March (UTC still says 2 March 02:30)
    monkeypatch.setattr(rec, "utcnow", lambda: datetime(2025, 3, 2, 2, 30, tzinfo=timezone.utc))
    with app.app_context():
        run_id = run_job("payments.reconciliation.reconcile_yesterday", {})
    with uow(app) as session:
        run = session.get(ReconciliationRun, run_id)
        assert (run.bill_date, run.status) == ("2025-03-01", "MATCHED")
    # 07:30 Beijing: yesterday's bill is not ready; the job fails transiently (retried), no run
    monkeypatch.setattr(rec, "utcnow", lambda: datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc))
    with app.app_context(), pytest.raises(rec.BillNotReady):
        run_job("payments.reconciliation.reconcile_yesterday", {})
    with uow(app) as session:
        assert session.scalar(select(func.count(ReconciliationRun.id))) == 1


def test_bad_dates_are_refused(app):
    result = cli(app, "pay", "reconcile", "--date", "2026-13-01")
    assert result.exit_code == 2 and "2026-13-01" in result.output  # click's usage error
    with uow(app), pytest.raises(ValueError, match="YYYY-MM-DD"):
        rec.reconcile_day("21-11-2026")
