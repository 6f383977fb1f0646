"""`flask --app wsgi pay refund|order|orders|close|sweep`, through click's CliRunner against the
emulated WeChat Pay. With the in-process queue the commands let their jobs run before returning;
with RQ they say the work is queued and the test runs the worker."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from payments.models import Refund
from tests.integration.members_helpers import make_member, uow
from tests.integration.test_pay_jobs import (
    UNREACHABLE,
    control,
    emu_order,
    order_row,
    paid_order,
    place_native,
    points_of,
    refund_row,
    wait_until,
)

SHANGHAI = timezone(timedelta(hours=8))


def pay(app, *args: str):
    return app.test_cli_runner().invoke(args=["pay", *args])


def refunds_count(app) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(Refund))


def test_pay_refund_sends_the_refund_and_refuses_more_than_was_paid(app, base_url, run_jobs):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-cli-refund", 10_000, member_id)
    result = pay(app, "refund", "N-cli-refund", "30", "--reason", "退一件", "--refund-no", "R-cli-1")
    assert result.exit_code == 0, result.output
    assert "refund R-cli-1 of order N-cli-refund: 30.00 yuan, PROCESSING" in result.output
    run_jobs()
    wait_until(lambda: refund_row(app, "R-cli-1").status == "SUCCESS", "the refund settled")
    assert order_row(app, "N-cli-refund").state == "PARTIALLY_REFUNDED"
    assert points_of(app, "N-cli-refund")[-1].delta == -(awarded * 3 // 10)

    too_much = pay(app, "refund", "N-cli-refund", "70.01", "--reason", "多退")
    assert too_much.exit_code != 0 and "only 7000 fen left to refund" in too_much.output
    for bad in ("0", "-5", "1.234", "abc"):
        refused = pay(app, "refund", "N-cli-refund", bad, "--reason", "x")
        assert refused.exit_code == 2 and "Invalid value" in refused.output, (bad, refused.output)
    unknown = pay(app, "refund", "N-nope", "1", "--reason", "x")
    assert unknown.exit_code != 0 and "no order N-nope" in unknown.output
    assert refunds_count(app) == 1  # nothing written by the refusals


def test_pay_order_shows_history_in_beijing_time_refunds_and_points(app, base_url, run_jobs):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-cli-show", 12_800, member_id)
    assert pay(app, "refund", "N-cli-show", "128", "--reason", "整单退", "--refund-no", "R-show").exit_code == 0
    run_jobs()
    wait_until(lambda: refund_row(app, "R-show").status == "SUCCESS", "the refund settled")
    result = pay(app, "order", "N-cli-show")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "order N-cli-show  native  REFUNDED" in out and "amount 128.00 yuan" in out
    paid_at = order_row(app, "N-cli-show").paid_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert f"paid {paid_at}" in out
    history = out.split("transactions (")[1].split("refunds (")[0].splitlines()[1:]
    assert any(" transaction " in line and "SUCCESS" in line and "EV-" in line for line in history), out
    assert any(" refund " in line and "SUCCESS" in line for line in history), out
    assert "R-show  128.00 yuan  SUCCESS" in out and "整单退" in out
    assert f"member {member_id}  +{awarded}  payment" in out and f"-{awarded}  refund" in out
    missing = pay(app, "order", "N-missing")
    assert missing.exit_code != 0 and "no order N-missing" in missing.output


def test_pay_orders_lists_and_filters(app, base_url):
    member_id = make_member(app)
    paid_order(app, base_url, "N-cli-paid", 5_000, member_id)
    place_native(app, "N-cli-open", 800)
    everything = pay(app, "orders")
    assert everything.exit_code == 0, everything.output
    assert "N-cli-paid" in everything.output and "N-cli-open" in everything.output
    assert "2 order(s)" in everything.output
    only_paid = pay(app, "orders", "--state", "PAID")
    assert "N-cli-paid" in only_paid.output and "N-cli-open" not in only_paid.output
    today = datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    assert "2 order(s)" in pay(app, "orders", "--date", today).output
    assert "0 order(s)" in pay(app, "orders", "--date", "2020-01-01").output
    assert "1 order(s)" in pay(app, "orders", "--limit", "1").output
    assert pay(app, "orders", "--state", "NONSENSE").exit_code != 0


def test_pay_close_ends_an_unpaid_qr_and_keeps_a_paid_one(app, base_url):
    place_native(app, "N-cli-close", 900)
    result = pay(app, "close", "N-cli-close")
    assert result.exit_code == 0, result.output
    assert "N-cli-close: CLOSED" in result.output
    assert emu_order(base_url, "N-cli-close")["trade_state"] == "CLOSED"

    member_id = make_member(app)
    place_native(app, "N-cli-paid-quietly", 900, member_id=member_id, notify_url=UNREACHABLE)
    control(base_url, "pay", out_trade_no="N-cli-paid-quietly")
    paid = pay(app, "close", "N-cli-paid-quietly")
    assert paid.exit_code == 0 and "it was paid" in paid.output
    assert order_row(app, "N-cli-paid-quietly").state == "PAID"
    assert [e.reason for e in points_of(app, "N-cli-paid-quietly")] == ["payment"]


def test_pay_sweep_closes_expired_orders(app, base_url, run_jobs):
    place_native(app, "N-cli-expired", 1_000, expired=True)
    result = pay(app, "sweep")
    assert result.exit_code == 0, result.output
    assert "expired orders handled: 1" in result.output
    run_jobs()  # with RQ the closes wait for a worker; in-process they already ran
    assert emu_order(base_url, "N-cli-expired")["trade_state"] == "CLOSED"
    assert order_row(app, "N-cli-expired").state == "CLOSED"
    assert "expired orders handled: 0" in pay(app, "sweep").output
