"""payments/jobs.py against the WeChat Pay emulator: refunds sent and settled, expired orders closed,
orders and refunds whose news never arrived found by the sweeps. Points move exactly once.

The app runs with the demo merchant, which the emulator knows; notifications come back over HTTP
to the app's real /pay/notify and /pay/refund-notify. Jobs the code queues run through the
`run_jobs` fixture (in-process thread, or a burst RQ worker); a job whose timing matters is run
directly with run_job, as a worker would.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from members.models import PointsEntry
from payments import jobs, service
from payments.models import Order, PaymentTransaction, Refund
from tests.integration.members_helpers import assert_ledger_consistent, balance, make_member, uow
from wx_service.ground.db import utcnow
from wx_service.ground.queue import run_job

UNREACHABLE = "http://127.0.0.1:9/pay/notify"  # a notify_url the app never hears from


# -- helpers ---------------------------------------------------------------------------------------

def pay_config(app):
    return app.extensions["wx_pay"]


def oa_appid(app) -> str:
    return app.extensions["wx"].settings.WECHAT_APPID


def control(base_url: str, what: str, **body) -> dict:
    r = requests.post(f"{base_url}/_emulator/pay/control/{what}", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def emu_state(base_url: str) -> dict:
    return requests.get(f"{base_url}/_emulator/pay/control/state", timeout=5).json()


def emu_order(base_url: str, out_trade_no: str) -> dict:
    return next(o for o in emu_state(base_url)["orders"] if o["out_trade_no"] == out_trade_no)


def emu_refunds(base_url: str, out_trade_no: str) -> list[dict]:
    return [r for r in emu_state(base_url)["refunds"] if r["out_trade_no"] == out_trade_no]


def wait_until(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def place_native(app, out_trade_no: str, amount_fen: int, *, member_id: int | None = None,
                 expired: bool = False, notify_url: str | None = None, at_wechat: bool = True) -> None:
    """Our order row, and (unless at_wechat=False) the same order placed at WeChat."""
    expires_at = utcnow() - timedelta(minutes=1) if expired else utcnow() + timedelta(minutes=15)
    with uow(app):
        service.create_order(out_trade_no, "native", amount_fen, oa_appid(app), description="测试商品",
                             member_id=member_id, expires_at=expires_at)
    if at_wechat:
        config = pay_config(app)
        config.gateway(oa_appid(app)).native(out_trade_no, "测试商品", amount_fen,
                                             notify_url or config.notify_url)


def order_row(app, out_trade_no: str) -> Order:
    with uow(app) as session:
        return session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))


def refund_row(app, out_refund_no: str) -> Refund:
    with uow(app) as session:
        return session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no))


def points_of(app, out_trade_no: str) -> list[PointsEntry]:
    with uow(app) as session:
        return list(session.scalars(select(PointsEntry).where(PointsEntry.ref_key == out_trade_no)
                                    .order_by(PointsEntry.id)))


def history(app, out_trade_no: str) -> list[PaymentTransaction]:
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
        return list(session.scalars(select(PaymentTransaction).where(PaymentTransaction.order_id == order.id)
                                    .order_by(PaymentTransaction.id)))


def paid_order(app, base_url: str, out_trade_no: str, amount_fen: int, member_id: int) -> int:
    """A native order paid by the shopper, its notification applied; returns the points awarded."""
    place_native(app, out_trade_no, amount_fen, member_id=member_id)
    control(base_url, "pay", out_trade_no=out_trade_no, openid="o-shopper")
    wait_until(lambda: order_row(app, out_trade_no).state == "PAID", "the payment notification")
    awarded = points_of(app, out_trade_no)
    assert [e.reason for e in awarded] == ["payment"] and awarded[0].delta > 0
    return awarded[0].delta


def record_refund(app, out_trade_no: str, out_refund_no: str, amount_fen: int) -> None:
    """The refund row as request_refund writes it, without queueing the job (the test runs it)."""
    with uow(app):
        service.request_refund(out_trade_no, out_refund_no, amount_fen)


def job(app, name: str, **kwargs):
    with app.app_context():
        return run_job(f"payments.jobs.{name}", kwargs)


def backdate(app, model, key_column, key: str, minutes: int) -> None:
    with uow(app) as session:
        session.execute(update(model).where(key_column == key)
                        .values(created_at=utcnow() - timedelta(minutes=minutes)))


# -- refunds ---------------------------------------------------------------------------------------

def test_a_full_refund_is_sent_settles_and_takes_back_every_point_once(app, base_url, run_jobs):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-full-refund", 10_000, member_id)
    with uow(app):
        refund = jobs.request_refund("N-full-refund", 10_000, "整单退货")
        number = refund.out_refund_no
    assert number.startswith("R") and refund.status == "PROCESSING"
    run_jobs()
    wait_until(lambda: refund_row(app, number).status == "SUCCESS", "REFUND.SUCCESS notification")
    order = order_row(app, "N-full-refund")
    assert order.state == "REFUNDED"
    entries = points_of(app, "N-full-refund")
    assert [(e.reason, e.delta) for e in entries] == [("payment", awarded), ("refund", -awarded)]
    assert balance(app, member_id) == 0
    at_wechat = emu_refunds(base_url, "N-full-refund")
    assert [(r["out_refund_no"], r["status"], r["amount"]["refund"]) for r in at_wechat] == [(number, "SUCCESS", 10_000)]
    assert refund_row(app, number).reason == "整单退货"
    # The job run again (a retry, a duplicate enqueue) sends nothing and takes nothing more.
    assert job(app, "refund", out_refund_no=number) == "SUCCESS"
    assert emu_state(base_url)["calls"]["refund"] == 1
    assert len(points_of(app, "N-full-refund")) == 2
    assert_ledger_consistent(app, member_id)


def test_partial_refunds_take_back_points_in_proportion_and_never_exceed_the_payment(app, base_url, run_jobs):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-partial", 10_000, member_id)
    with uow(app):
        first = jobs.request_refund("N-partial", 3_000, "退一件").out_refund_no
    run_jobs()
    wait_until(lambda: refund_row(app, first).status == "SUCCESS", "first refund settled")
    assert order_row(app, "N-partial").state == "PARTIALLY_REFUNDED"
    assert points_of(app, "N-partial")[-1].delta == -(awarded * 3_000 // 10_000)

    with uow(app):
        second = jobs.request_refund("N-partial", 7_000, "退余下的").out_refund_no
    with pytest.raises(service.RefundRefused, match="only 0 fen left"):
        with uow(app):
            jobs.request_refund("N-partial", 1, "多退一分")
    run_jobs()
    wait_until(lambda: refund_row(app, second).status == "SUCCESS", "second refund settled")
    assert order_row(app, "N-partial").state == "REFUNDED"
    assert sum(e.delta for e in points_of(app, "N-partial")) == 0  # all of it back, no more
    assert sum(r["amount"]["refund"] for r in emu_refunds(base_url, "N-partial")) == 10_000
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == 2
    assert_ledger_consistent(app, member_id)


def test_the_same_refund_number_twice_is_one_refund_at_wechat(app, base_url, run_jobs):
    member_id = make_member(app)
    paid_order(app, base_url, "N-same-no", 5_000, member_id)
    for _ in range(2):
        with uow(app):
            refund = jobs.request_refund("N-same-no", 2_000, "退货", out_refund_no="R-same-1")
            assert refund.out_refund_no == "R-same-1"
    run_jobs()
    wait_until(lambda: refund_row(app, "R-same-1").status == "SUCCESS", "refund settled")
    assert emu_state(base_url)["calls"]["refund"] == 1
    assert len(emu_refunds(base_url, "N-same-no")) == 1
    assert [e.reason for e in points_of(app, "N-same-no")] == ["payment", "refund"]
    # Same number, another amount: refused, nothing sent.
    with pytest.raises(service.RefundRefused, match="different amount"):
        with uow(app):
            jobs.request_refund("N-same-no", 2_500, "退货", out_refund_no="R-same-1")


def test_answer_first_then_the_notification_takes_points_back_once(app, base_url, emulator):
    from wx_service.edges.emulator.pay_orders import _settle_refund

    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-answer-first", 10_000, member_id)
    control(base_url, "config", refund_settle_seconds=3600)  # WeChat settles only when we say
    control(base_url, "faults", api="refund", extra={"status": "SUCCESS"})  # an instant refund
    record_refund(app, "N-answer-first", "R-answer-first", 5_000)
    assert job(app, "refund", out_refund_no="R-answer-first") == "SUCCESS"
    assert points_of(app, "N-answer-first")[-1].delta == -(awarded // 2)
    # Now WeChat's REFUND.SUCCESS notification arrives: acknowledged, nothing taken twice.
    _settle_refund(emulator, f"{pay_config(app).mchid}/R-answer-first", emulator.pay.generation)
    wait_until(lambda: any(n["event_type"] == "REFUND.SUCCESS" and n["delivered"]
                           for n in emu_state(base_url)["notifications"]), "the refund notification")
    assert [e.reason for e in points_of(app, "N-answer-first")] == ["payment", "refund"]
    assert order_row(app, "N-answer-first").state == "PARTIALLY_REFUNDED"
    assert_ledger_consistent(app, member_id)


def test_notification_first_then_the_retried_job_takes_points_back_once(app, base_url):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-notice-first", 10_000, member_id)
    # The refund is made at WeChat but its answer is lost (altered in transit: refused by us).
    control(base_url, "faults", api="refund", tamper=True)
    record_refund(app, "N-notice-first", "R-notice-first", 10_000)
    with pytest.raises(jobs.RetryLater):
        job(app, "refund", out_refund_no="R-notice-first")
    wait_until(lambda: refund_row(app, "R-notice-first").status == "SUCCESS", "REFUND.SUCCESS notification")
    assert points_of(app, "N-notice-first")[-1].delta == -awarded
    # The queue's retry finds it settled: no second call, no second reversal.
    assert job(app, "refund", out_refund_no="R-notice-first") == "SUCCESS"
    assert emu_state(base_url)["calls"]["refund"] == 1
    assert len(emu_refunds(base_url, "N-notice-first")) == 1
    assert [e.reason for e in points_of(app, "N-notice-first")] == ["payment", "refund"]
    assert_ledger_consistent(app, member_id)


def test_notenough_is_final_shown_to_staff_and_frees_the_amount(app, base_url, run_jobs):
    member_id = make_member(app)
    paid_order(app, base_url, "N-notenough", 8_000, member_id)
    control(base_url, "faults", api="refund", code="NOTENOUGH")
    record_refund(app, "N-notenough", "R-notenough", 8_000)
    assert job(app, "refund", out_refund_no="R-notenough") == "CLOSED"
    refund = refund_row(app, "R-notenough")
    assert refund.status == "CLOSED" and refund.needs_reconcile
    refused = [t for t in history(app, "N-notenough") if t.outcome == "REFUSED"]
    assert [(t.kind, t.trade_state) for t in refused] == [("refund", "NOTENOUGH")]
    assert order_row(app, "N-notenough").state == "PAID"
    assert [e.reason for e in points_of(app, "N-notenough")] == ["payment"]  # nothing taken back
    assert emu_state(base_url)["calls"]["refund"] == 1 and emu_refunds(base_url, "N-notenough") == []
    # Once the merchant account is topped up, staff refund again under a new number.
    with uow(app):
        again = jobs.request_refund("N-notenough", 8_000, "余额已补足").out_refund_no
    run_jobs()
    wait_until(lambda: refund_row(app, again).status == "SUCCESS", "the new refund settled")
    assert order_row(app, "N-notenough").state == "REFUNDED"


def test_system_error_is_retried_with_the_same_refund_number(app, base_url, run_jobs):
    member_id = make_member(app)
    paid_order(app, base_url, "N-syserr", 6_000, member_id)
    control(base_url, "faults", api="refund", code="SYSTEM_ERROR", status=500)
    with uow(app):
        number = jobs.request_refund("N-syserr", 6_000, "退货").out_refund_no
    run_jobs()  # the first try meets SYSTEM_ERROR, the queue's retry goes through
    wait_until(lambda: refund_row(app, number).status == "SUCCESS", "refund settled after the retry")
    assert emu_state(base_url)["calls"]["refund"] == 2
    assert [r["out_refund_no"] for r in emu_refunds(base_url, "N-syserr")] == [number]
    assert [e.reason for e in points_of(app, "N-syserr")] == ["payment", "refund"]


def test_a_refund_whose_notification_never_came_is_settled_by_the_sweep(app, base_url, emulator):
    member_id = make_member(app)
    awarded = paid_order(app, base_url, "N-lost-refund-notice", 4_000, member_id)
    control(base_url, "config", refund_settle_seconds=3600)
    record_refund(app, "N-lost-refund-notice", "R-lost-notice", 4_000)
    assert job(app, "refund", out_refund_no="R-lost-notice") == "PROCESSING"
    with emulator.lock:  # WeChat settles it, but its notification is lost
        emulator.pay.refunds[f"{pay_config(app).mchid}/R-lost-notice"].update(
            status="SUCCESS", success_time="2026-11-22T18:00:00+08:00")
    assert job(app, "query_stale_orders") == 0  # too fresh to ask about yet
    backdate(app, Refund, Refund.out_refund_no, "R-lost-notice", 4)
    assert job(app, "query_stale_orders") == 1
    assert refund_row(app, "R-lost-notice").status == "SUCCESS"
    assert order_row(app, "N-lost-refund-notice").state == "REFUNDED"
    assert points_of(app, "N-lost-refund-notice")[-1].delta == -awarded


# -- expiry and stale orders ----------------------------------------------------------------------

def test_an_expired_qr_is_closed_at_wechat_and_here(app, base_url, run_jobs):
    place_native(app, "N-expired", 1_500, expired=True)
    place_native(app, "N-still-valid", 1_500)
    assert job(app, "close_expired_orders") == 1
    run_jobs()  # EXPIRE queued close_order after commit
    assert emu_order(base_url, "N-expired")["trade_state"] == "CLOSED"
    order = order_row(app, "N-expired")
    assert order.state == "CLOSED" and order.closed_at is not None and not order.needs_reconcile
    assert [(t.kind, t.trade_state) for t in history(app, "N-expired")] == [("close", "CLOSED")]
    assert order_row(app, "N-still-valid").state == "CREATED"
    assert emu_order(base_url, "N-still-valid")["trade_state"] == "NOTPAY"
    assert job(app, "close_expired_orders") == 0  # nothing left to do
    assert emu_state(base_url)["calls"]["close"] == 1


def test_an_expired_qr_paid_without_notification_is_paid_not_closed(app, base_url, run_jobs):
    member_id = make_member(app)
    place_native(app, "N-paid-late", 2_000, member_id=member_id, expired=True, notify_url=UNREACHABLE)
    control(base_url, "pay", out_trade_no="N-paid-late", openid="o-late")
    assert job(app, "close_expired_orders") == 1
    run_jobs()
    order = order_row(app, "N-paid-late")
    assert order.state == "PAID" and order.transaction_id and order.payer_openid == "o-late"
    assert [e.reason for e in points_of(app, "N-paid-late")] == ["payment"]
    assert "close" not in emu_state(base_url)["calls"]
    assert emu_order(base_url, "N-paid-late")["trade_state"] == "SUCCESS"


def test_close_order_on_an_order_paid_meanwhile_applies_the_payment(app, base_url):
    member_id = make_member(app)
    place_native(app, "N-close-paid", 2_600, member_id=member_id, notify_url=UNREACHABLE)
    control(base_url, "pay", out_trade_no="N-close-paid")
    assert job(app, "close_order", out_trade_no="N-close-paid") == "PAID"  # close refused: it was paid
    assert [e.reason for e in points_of(app, "N-close-paid")] == ["payment"]
    assert not order_row(app, "N-close-paid").needs_reconcile


def test_query_stale_orders_finds_a_payment_whose_notification_never_arrived(app, base_url):
    member_id = make_member(app)
    place_native(app, "N-stale-paid", 3_300, member_id=member_id, notify_url=UNREACHABLE)
    place_native(app, "N-stale-waiting", 900)
    place_native(app, "N-never-placed", 700, at_wechat=False)
    control(base_url, "pay", out_trade_no="N-stale-paid", openid="o-stale")
    assert job(app, "query_stale_orders") == 0  # all younger than a few minutes: not asked yet
    for no, minutes in (("N-stale-paid", 4), ("N-stale-waiting", 4), ("N-never-placed", 6)):
        backdate(app, Order, Order.out_trade_no, no, minutes)
    assert job(app, "query_stale_orders") == 3
    paid = order_row(app, "N-stale-paid")
    assert paid.state == "PAID" and paid.checked_at is not None
    assert [e.reason for e in points_of(app, "N-stale-paid")] == ["payment"]
    waiting = order_row(app, "N-stale-waiting")
    assert waiting.state == "CREATED" and waiting.checked_at is not None
    assert history(app, "N-stale-waiting") == []  # NOTPAY changes nothing and leaves no row
    gone = order_row(app, "N-never-placed")
    assert gone.state == "CLOSED"
    assert [t.trade_state for t in history(app, "N-never-placed")] == ["ORDER_NOT_EXIST"]
    # Run again at once: checked a moment ago, so nobody is asked twice; later, still paid once.
    assert job(app, "query_stale_orders") == 0
    with uow(app) as session:
        session.execute(update(Order).values(checked_at=None))
    assert job(app, "query_stale_orders") == 1  # only the one still waiting
    assert [e.reason for e in points_of(app, "N-stale-paid")] == ["payment"]


def test_two_sweeps_at_once_close_each_order_once(app, base_url, run_jobs):
    numbers = [f"N-race-{i}" for i in range(6)]
    for no in numbers:
        place_native(app, no, 1_000, expired=True)
    results: list[int] = []

    def sweep() -> None:
        results.append(job(app, "close_expired_orders"))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_jobs()
    assert sum(results) == len(numbers)
    assert emu_state(base_url)["calls"]["close"] == len(numbers)
    assert emu_state(base_url)["calls"]["query"] == len(numbers)
    assert {order_row(app, no).state for no in numbers} == {"CLOSED"}


def test_a_payment_code_order_is_reversed_not_closed(app, base_url):
    config = pay_config(app)
    code = control(base_url, "payment-code", seconds=0, outcome="give_up")["auth_code"]
    with uow(app):
        service.create_order("C-reverse", "codepay", 1_200, oa_appid(app), description="收银台")
    answer = config.gateway(oa_appid(app)).codepay("C-reverse", "收银台", 1_200, code, "till-1", "127.0.0.1")
    assert answer.result == "USERPAYING"
    assert job(app, "close_order", out_trade_no="C-reverse") == "REVERSED"
    assert emu_order(base_url, "C-reverse")["trade_state"] == "REVOKED"
    assert "close" not in emu_state(base_url)["calls"]
    assert [(t.kind, t.trade_state) for t in history(app, "C-reverse")] == [("reverse", "REVOKED")]


def test_a_refund_whose_job_was_lost_is_sent_by_the_sweep(app, base_url, run_jobs):
    member_id = make_member(app)
    paid_order(app, base_url, "N-lost-job", 2_000, member_id)
    record_refund(app, "N-lost-job", "R-lost-job", 2_000)  # recorded, but its job never ran
    backdate(app, Refund, Refund.out_refund_no, "R-lost-job", 4)
    assert job(app, "query_stale_orders") == 1  # WeChat has no such refund: sent now, same number
    run_jobs()
    wait_until(lambda: refund_row(app, "R-lost-job").status == "SUCCESS", "the refund settled")
    assert [r["out_refund_no"] for r in emu_refunds(base_url, "N-lost-job")] == ["R-lost-job"]
    assert [e.reason for e in points_of(app, "N-lost-job")] == ["payment", "refund"]


def test_the_stale_sweep_leaves_a_payment_code_flow_inside_its_window_alone(app, base_url):
    with uow(app) as session:
        order = service.create_order("C-in-flight", "codepay", 1_000, oa_appid(app), description="收银台")
        order.created_at = utcnow() - timedelta(minutes=4)  # queued late: submitted only now
        order.submitted_at = utcnow()
    assert job(app, "query_stale_orders") == 0
    assert "query" not in emu_state(base_url)["calls"]
    assert order_row(app, "C-in-flight").checked_at is None
