"""The payment-code flow (payments/cashier.py) against the WeChat Pay emulator, run by real jobs.

Embedded mode: the in-process queue runs the flow, delays included. With REDIS_URL: the flow's
jobs are real RQ jobs; `settle` moves the due scheduled ones into the queue (what a worker's
scheduler does) and runs a burst worker, and one test kills a real `flask --app wsgi worker`.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from members import staff as staff_service
from members.models import PointsEntry, Staff
from payments import cashier
from payments.models import CodepayAnswer, Order, PaymentTransaction
from payments.service import create_order
from tests.conftest import requires_redis
from tests.integration.members_helpers import make_member, uow
from wx_service.ground.queue import QUEUE_NAME, run_job

REPO = Path(__file__).resolve().parents[2]


# -- helpers -------------------------------------------------------------------------------------

def pay(base_url: str, path: str, **body):
    r = requests.post(f"{base_url}/_emulator/pay/control/{path}", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def shopper_code(base_url: str, seconds: float = 0, outcome: str = "pay", openid: str | None = None) -> str:
    body = {"seconds": seconds, "outcome": outcome}
    if openid:
        body["openid"] = openid
    return pay(base_url, "payment-code", **body)["auth_code"]


def calls(base_url: str) -> dict[str, int]:
    return requests.get(f"{base_url}/_emulator/pay/control/state", timeout=5).json()["calls"]


def start(app, auth_code: str, amount_fen: int = 12_30) -> str:
    with uow(app):
        return cashier.start_codepay(amount_fen, auth_code, "till-1", None, "测试商品").out_trade_no


def view(app, no: str) -> dict:
    with uow(app):
        return cashier.flow_view(no)


def _run_due_rq_jobs(app) -> None:
    from rq import SimpleWorker
    from rq.scheduler import RQScheduler

    redis = app.extensions["wx"].redis
    scheduler = RQScheduler([QUEUE_NAME], connection=redis)
    scheduler.prepare_registries([QUEUE_NAME])
    scheduler.enqueue_scheduled_jobs()
    with app.app_context():
        SimpleWorker([QUEUE_NAME], connection=redis).work(burst=True, with_scheduler=False)


def settle(app, no: str, timeout: float = 40) -> dict:
    """Let the flow's jobs run until the order has ended; returns the page's view of it."""
    deadline = time.monotonic() + timeout
    while True:
        if app.extensions["wx"].settings.JOB_QUEUE == "rq":
            _run_due_rq_jobs(app)
        flow = view(app, no)
        if flow["ended"]:
            return flow
        assert time.monotonic() < deadline, f"flow did not end: {flow}"
        time.sleep(0.2)


def order_row(app, no: str) -> Order:
    with uow(app) as session:
        return session.scalar(select(Order).where(Order.out_trade_no == no))


def payment_points(app, no: str) -> list[PointsEntry]:
    with uow(app) as session:
        return list(session.scalars(select(PointsEntry).where(PointsEntry.source_key == f"payment:{no}")))


def transactions(app, no: str) -> int:
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == no))
        return session.scalar(select(func.count()).select_from(PaymentTransaction)
                              .where(PaymentTransaction.order_id == order.id))


# -- outcomes --------------------------------------------------------------------------------------

def test_shopper_pays_at_once(app, base_url):
    no = start(app, shopper_code(base_url))
    flow = settle(app, no)
    assert flow["state"] == "PAID" and flow["outcome"]["code"] == "PAID"
    assert [s["call"] for s in flow["steps"]] == ["SUBMITTED", "SUBMIT"]
    assert flow["steps"][1]["result"] == "SUCCESS"
    assert calls(base_url).get("codepay") == 1 and calls(base_url).get("query", 0) == 0
    assert order_row(app, no).transaction_id.startswith("4200")


def test_userpaying_then_paid_awards_the_member_once(app, base_url):
    member = make_member(app, oa_openid="oCashierPayer1")
    no = start(app, shopper_code(base_url, seconds=3, openid="oCashierPayer1"), amount_fen=100_00)
    flow = settle(app, no)
    assert flow["state"] == "PAID"
    results = [(s["call"], s["result"]) for s in flow["steps"]]
    assert results[1] == ("SUBMIT", "USERPAYING")
    assert results[-1] == ("QUERY", "SUCCESS")
    assert "USERPAYING" in flow["steps"][1]["en"] and "输入密码" in flow["steps"][1]["zh"]
    assert calls(base_url)["codepay"] == 1 and calls(base_url)["query"] >= 1
    entries = payment_points(app, no)
    assert len(entries) == 1 and entries[0].member_id == member and entries[0].delta > 0
    assert order_row(app, no).points_member_id == member


def test_notenough_is_a_definite_failure_without_a_query(app, base_url):
    no = start(app, shopper_code(base_url, outcome="notenough"))
    flow = settle(app, no)
    assert flow["state"] == "CLOSED"
    assert flow["outcome"]["code"] == "FAILED" and "NOTENOUGH" in flow["outcome"]["en"]
    assert "余额不足" in flow["outcome"]["zh"]
    assert calls(base_url).get("query", 0) == 0 and calls(base_url).get("reverse", 0) == 0
    assert order_row(app, no).closed_at is not None


@pytest.mark.parametrize("fault", [
    {"api": "codepay", "unsigned": True},  # WeChat took it, the answer cannot be trusted
    {"api": "codepay", "delay": 11},  # WeChat took it, the answer came after our 10 s read timeout
], ids=["unverifiable-answer", "timeout"])
def test_unknown_submit_answer_is_queried_never_resubmitted(app, base_url, fault):
    pay(base_url, "faults", **fault)
    no = start(app, shopper_code(base_url))
    flow = settle(app, no, timeout=60)
    assert flow["state"] == "PAID"
    assert flow["steps"][1]["call"] == "SUBMIT" and flow["steps"][1]["result"] in ("UNVERIFIED", "TIMEOUT")
    assert flow["steps"][-1]["call"] == "QUERY"
    assert calls(base_url)["codepay"] == 1


def test_shopper_gives_up_and_the_order_is_reversed(app, base_url):
    """Slow (about 50 s): the schedule queries within WeChat's 45 s window, then reverses."""
    pay(base_url, "config", codepay_auto_revoke_seconds=300)  # so that our reverse, not WeChat's, ends it
    no = start(app, shopper_code(base_url, seconds=2, outcome="give_up"))
    flow = settle(app, no, timeout=90)
    assert flow["state"] == "REVERSED" and flow["outcome"]["code"] == "REVERSED"
    calls_ = [s["call"] for s in flow["steps"]]
    assert calls_[-1] == "REVERSE" and "QUERY" in calls_
    assert calls(base_url)["codepay"] == 1 and calls(base_url)["reverse"] >= 1
    assert payment_points(app, no) == []


# -- refusals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["163456789012345678", "1012345678901234", "10123456789012345x",
                                  "１０１２３４５６７８９０１２３４５６７８", ""])
def test_an_invalid_payment_code_is_refused_with_nothing_written(app, wx, code):
    with pytest.raises(cashier.CashierRefused):
        with uow(app):
            cashier.start_codepay(100, code, "till-1", None, "x")
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
    assert wx.redis.keys("*cashier*") == []


@pytest.mark.parametrize("text,fen", [("12.3", 1230), ("0.01", 1), ("100000", 100_000_00), ("7.05", 705)])
def test_yuan_are_converted_to_fen_exactly(text, fen):
    assert cashier.parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["0", "0.00", "1.234", "-1", "1e3", "１２", "100000.01", "", " . "])
def test_bad_amounts_are_refused(text):
    with pytest.raises(cashier.CashierRefused):
        cashier.parse_yuan(text)


# -- concurrency, lost workers, the sweep ---------------------------------------------------------

def test_two_copies_of_the_job_submit_once_and_pay_once(app, base_url):
    make_member(app, oa_openid="oCashierPayer2")
    no = start(app, shopper_code(base_url, seconds=1, openid="oCashierPayer2"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def copy() -> None:
        try:
            with app.app_context():
                barrier.wait(5)
                run_job(cashier.JOB, {"out_trade_no": no})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    flow = settle(app, no)
    assert flow["state"] == "PAID"
    assert calls(base_url)["codepay"] == 1
    with uow(app) as session:
        submits = session.scalar(select(func.count()).select_from(CodepayAnswer)
                                 .where(CodepayAnswer.call == "SUBMIT"))
    assert submits == 1
    assert len(payment_points(app, no)) == 1
    assert transactions(app, no) == 1  # the paid transaction applied once


def test_a_code_that_expired_before_the_submit_is_closed_without_calling_wechat(app, base_url):
    with uow(app):
        order = create_order("C20260101000000123", "codepay", 500, app.extensions["wx"].settings.WECHAT_APPID)
        order.counter = "till-1"
    with uow(app):
        result = cashier.resume_codepay_flows()
    assert result == {"enqueued": [], "closed": ["C20260101000000123"]}
    flow = view(app, "C20260101000000123")
    assert flow["state"] == "CLOSED" and flow["outcome"]["code"] == "CLOSED"
    assert "expired" in flow["outcome"]["en"]
    assert calls(base_url).get("codepay", 0) == 0 and calls(base_url).get("query", 0) == 0


def test_the_sweep_leaves_moving_flows_alone_and_restarts_stalled_ones(app, base_url):
    from datetime import timedelta

    no = start(app, shopper_code(base_url, seconds=0))
    settle(app, no)
    with uow(app):
        moving = create_order("C20260101000000456", "codepay", 500, app.extensions["wx"].settings.WECHAT_APPID)
        moving.submitted_at = cashier.utcnow()  # next step (a query) due in 5 s: someone will do it
        stalled = create_order("C20260101000000789", "codepay", 500, app.extensions["wx"].settings.WECHAT_APPID)
        stalled.submitted_at = cashier.utcnow() - timedelta(seconds=60)  # its query is 55 s overdue
    with uow(app):
        assert cashier.resume_codepay_flows() == {"enqueued": ["C20260101000000789"], "closed": []}
    # The restarted flow queries; WeChat never had the order and its window has passed: closed.
    flow = settle(app, "C20260101000000789")
    assert flow["state"] == "CLOSED" and [s["call"] for s in flow["steps"]] == ["SUBMITTED", "QUERY"]
    assert flow["steps"][1]["result"] == "ORDER_NOT_EXIST"
    assert [s["call"] for s in view(app, "C20260101000000456")["steps"]] == ["SUBMITTED"]  # left alone
    assert calls(base_url)["codepay"] == 1 and calls(base_url)["query"] == 1  # the sweep never submits


# -- the worker killed mid-flow ---------------------------------------------------------------------

def _worker(settings) -> subprocess.Popen:
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": settings.DATABASE_URL,
           "REDIS_URL": settings.REDIS_URL, "WECHAT_API_BASE": settings.WECHAT_API_BASE}
    for name in dir(settings):
        if name.startswith("WXPAY_") or name == "EMULATOR_PAY_KEY_FILE":
            value = getattr(settings, name)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
                env[name] = str(value)
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_tree(pid: int) -> None:
    """kill -9 a worker and every process it forked. RQ's work-horse calls setsid(), so it is in a
    session of its own and a process-group kill would miss it; find children through /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # the parent pid
                children.append(int(entry))
    for child in children:
        _kill_tree(child)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait(what, predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@requires_redis
def test_a_worker_killed_mid_submit_is_picked_up_and_pays_exactly_once(app, base_url, settings):
    member = make_member(app, oa_openid="oCashierPayer3")
    # The shopper types the password for 8 s; WeChat takes 3 s to answer the submit, and the
    # worker is killed while waiting for that answer: the submit reached WeChat, its answer is lost.
    pay(base_url, "faults", api="codepay", delay=3)
    code = shopper_code(base_url, seconds=8, openid="oCashierPayer3")
    worker = _worker(settings)
    try:
        no = start(app, code, amount_fen=88_00)
        _wait("the submit to reach WeChat", lambda: calls(base_url).get("codepay") == 1)
        assert order_row(app, no).submitted_at is not None
        _kill_tree(worker.pid)  # kill -9, the work-horse and the scheduler too
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(CodepayAnswer)) == 0  # no answer stored
    def sweep() -> list[str]:
        with uow(app):
            return cashier.resume_codepay_flows(stalled_after=0)["enqueued"]

    # Nothing moves the flow now; once its first query is due, the sweep sees it stalled.
    _wait("the sweep to restart the flow", lambda: sweep() == [no])
    fresh = _worker(settings)
    try:
        _wait("the order to end", lambda: view(app, no)["ended"], timeout=60)
    finally:
        os.killpg(fresh.pid, signal.SIGTERM)
        fresh.wait(20)
    flow = view(app, no)
    assert flow["state"] == "PAID"
    assert calls(base_url)["codepay"] == 1
    assert [e.member_id for e in payment_points(app, no)] == [member]
    assert transactions(app, no) == 1


# -- the console's JSON calls ------------------------------------------------------------------------

def _signed_in(app, base_url: str) -> tuple[requests.Session, str]:
    with uow(app) as session:
        staff = Staff(username="cashier1", name="Cashier One")
        session.add(staff)
        session.flush()
        staff_service.set_password("cashier1", "correct horse battery")
        staff_service.grant_role("cashier1", staff_service.CASHIER)
    s = requests.Session()
    page = s.get(f"{base_url}/console/login", timeout=5).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    r = s.post(f"{base_url}/console/login", data={"username": "cashier1", "password": "correct horse battery",
                                                  "csrf_token": token}, timeout=5, allow_redirects=False)
    assert r.status_code == 302, r.text
    page = s.get(f"{base_url}/console/cashier/", timeout=5)
    assert page.status_code == 200 and 'id="auth-code"' in page.text
    return s, re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_console_charge_runs_the_flow_and_refuses_bad_input(app, base_url):
    s, token = _signed_in(app, base_url)
    url = f"{base_url}/console/cashier/api/charges"
    code = shopper_code(base_url)
    assert s.post(url, json={"amount": "1.00", "auth_code": code}, timeout=5).status_code == 403  # no CSRF
    assert requests.post(url, json={"amount": "1.00", "auth_code": code}, timeout=5).status_code == 401
    for bad in ({"amount": "1.001", "auth_code": code}, {"amount": "0", "auth_code": code},
                {"amount": "5", "auth_code": "not-a-code"}, {"amount": 5, "auth_code": code}):
        r = s.post(url, json=bad, headers={"X-CSRF-Token": token}, timeout=5)
        assert r.status_code == 400 and r.json()["message"], bad
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
    r = s.post(url, json={"amount": "19.90", "auth_code": code, "counter": "till-7"},
               headers={"X-CSRF-Token": token}, timeout=5)
    assert r.status_code == 201, r.text
    no = r.json()["out_trade_no"]
    assert r.json()["amount_fen"] == 1990
    assert settle(app, no)["state"] == "PAID"
    shown = s.get(f"{url}/{no}", timeout=5).json()
    assert shown["outcome"]["code"] == "PAID" and shown["counter"] == "till-7"
    assert s.get(f"{url}/C404", timeout=5).status_code == 404
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == no))
        assert code not in (order.attach + order.source + order.description)
        assert all(code not in a.raw for a in session.scalars(select(CodepayAnswer)))
