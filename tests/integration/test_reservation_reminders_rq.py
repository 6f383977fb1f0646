"""Reminders reach the shopper once per kind: under a duplicated scheduler run, two schedulers at
once, an outage, and a worker killed mid-send (a real `flask --app wsgi worker`, SIGKILLed while
the emulated WeChat is still answering)."""
from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta

from sqlalchemy import select

from reservations import bookings, jobs
from reservations.models import Notice
from tests.conftest import requires_postgres, requires_redis
from tests.integration.notice_helpers import grant_consents, ledger_remaining, notices_in_chat, shopper
from tests.integration.reservation_helpers import on_grid, uow
from tests.integration.reservation_helpers import service as make_service
from tests.integration.test_cashier import _kill_tree, _wait, _worker
from wx_service.edges.emulator.state import Fault
from wx_service.ground.db import utcnow


def _titles(emulator, who) -> list[str]:
    out = []
    for line in notices_in_chat(emulator, who):
        out.append(line["data"]["keyword4"]["value"] if line["via"] == "template" else line["data"]["phrase5"])
    return out


def _book(app, who, hours_ahead: float, run_jobs):
    service, resource = make_service(app)
    at = on_grid(app, service, hours_ahead=hours_ahead)
    with uow(app):
        booking = bookings.book(service, at, who.mp, "k-1", resource_id=resource).id
    run_jobs()
    return booking, at


def _reminders(app, now) -> int:
    with uow(app):
        return jobs.queue_reminders(now=now)


def test_a_duplicated_scheduler_run_sends_each_reminder_once(app, emulator, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)
    day_before = at - timedelta(hours=24) + timedelta(minutes=1)
    assert [_reminders(app, day_before), _reminders(app, day_before)] == [1, 0]
    run_jobs()
    assert _reminders(app, day_before + timedelta(minutes=1)) == 0
    two_hours = at - timedelta(hours=2) + timedelta(minutes=1)
    assert [_reminders(app, two_hours), _reminders(app, two_hours)] == [1, 0]
    run_jobs()
    assert _titles(emulator, who) == ["预约成功", "预约提醒", "预约提醒"]
    with uow(app) as session:
        assert sorted(session.scalars(select(Notice.kind).where(Notice.kind.like("reminder%")))) == [
            "reminder_120", "reminder_1440"]


@requires_postgres
def test_two_schedulers_at_once_send_each_reminder_once(app, emulator, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)
    due = at - timedelta(hours=24) + timedelta(minutes=1)
    start = threading.Barrier(2)
    queued: list[int] = []

    def scheduler() -> None:
        start.wait()
        queued.append(_reminders(app, due))
    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    run_jobs()
    assert sorted(queued) == [0, 1]
    assert _titles(emulator, who) == ["预约成功", "预约提醒"]


def test_a_booking_made_inside_the_two_hour_window_gets_no_reminder(app, emulator, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 1.2, run_jobs)  # the service's lead time is an hour; its grid 40 minutes
    assert _reminders(app, utcnow()) == 0
    assert _reminders(app, at - timedelta(minutes=30)) == 0
    run_jobs()
    assert _titles(emulator, who) == ["预约成功"]


def test_after_a_scheduler_outage_only_the_latest_due_reminder_goes(app, emulator, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)
    # The scheduler was down from a day before until an hour before the start.
    assert _reminders(app, at - timedelta(hours=1)) == 1
    assert _reminders(app, at - timedelta(minutes=30)) == 0
    run_jobs()
    with uow(app) as session:
        assert list(session.scalars(select(Notice.kind).where(Notice.kind.like("reminder%")))) == ["reminder_120"]
    assert _titles(emulator, who) == ["预约成功", "预约提醒"]


# -- a worker killed mid-send ------------------------------------------------------------------------

def _notice(app, kind: str) -> Notice:
    with uow(app) as session:
        found = session.scalar(select(Notice).where(Notice.kind == kind))
        session.expunge_all()
        return found


def _kill_mid_send(app, emulator, settings, api: str) -> None:
    """Start a worker, let it reach WeChat's (slow) `api`, and kill -9 it while it waits."""
    before = emulator.calls.get(api, 0)
    emulator.faults.append(Fault(api=api, delay=3))
    worker = _worker(settings)
    try:
        _wait("the send to reach WeChat", lambda: emulator.calls.get(api, 0) == before + 1)
        _kill_tree(worker.pid)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


def _sweep_time(app, kind: str = "reminder_1440"):
    """Three minutes after the notice was queued (the tests queue reminders at a future `now`)."""
    return max(_notice(app, kind).created_at, utcnow()) + timedelta(minutes=3)


def _sweep_and_run(app, settings, until) -> dict[str, int]:
    at = _sweep_time(app)
    with uow(app):
        counts = jobs.resume_stalled_notices(now=at)
    fresh = _worker(settings)
    try:
        _wait("the notice to settle", until, timeout=60)
    finally:
        os.killpg(fresh.pid, signal.SIGTERM)
        fresh.wait(20)
    return counts


@requires_redis
def test_a_worker_killed_mid_template_send_leaves_the_reminder_shown_once(app, emulator, settings, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)
    _reminders(app, at - timedelta(hours=24) + timedelta(minutes=1))
    _kill_mid_send(app, emulator, settings, "message/template/send")
    # WeChat got the send and shows it once its slow answer is done; the worker never heard back.
    _wait("WeChat to show the reminder", lambda: _titles(emulator, who) == ["预约成功", "预约提醒"])
    assert _notice(app, "reminder_1440").status == "sending"
    counts = _sweep_and_run(app, settings, lambda: _notice(app, "reminder_1440").status == "sent")
    assert counts["requeued"] == 1
    assert emulator.calls["message/template/send"] == 3  # confirmation, the lost send, the resend
    assert _titles(emulator, who) == ["预约成功", "预约提醒"]  # the resend was dropped by client_msg_id


@requires_redis
def test_a_worker_killed_mid_subscribe_send_is_unknown_never_sent_twice(app, emulator, settings, run_jobs):
    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)  # no consent yet: the confirmation went as a template
    grant_consents(app, emulator, who, 2)
    _reminders(app, at - timedelta(hours=24) + timedelta(minutes=1))
    _kill_mid_send(app, emulator, settings, "message/subscribe/send")
    _wait("WeChat to show the reminder", lambda: _titles(emulator, who) == ["预约成功", "预约提醒"])
    counts = _sweep_and_run(app, settings, lambda: _notice(app, "reminder_1440").status == "unknown")
    assert counts["unknown"] == 1
    at = _sweep_time(app)
    with uow(app):  # a second sweep and the new worker change nothing
        assert jobs.resume_stalled_notices(now=at)["requeued"] == 0
    run_jobs()
    assert emulator.calls["message/subscribe/send"] == 1
    assert _titles(emulator, who) == ["预约成功", "预约提醒"]
    assert ledger_remaining(app, who.mp) == 1  # one consent spent, once


@requires_redis
def test_a_job_lost_before_the_claim_is_sent_by_the_sweep(app, emulator, wx, settings, run_jobs):
    from rq import Queue

    from wx_service.ground.queue import QUEUE_NAME

    who = shopper(app, emulator)
    _, at = _book(app, who, 30, run_jobs)
    _reminders(app, at - timedelta(hours=24) + timedelta(minutes=1))
    Queue(QUEUE_NAME, connection=wx.redis).empty()  # the worker that took the job died before claiming it
    assert _notice(app, "reminder_1440").status == "pending"
    counts = _sweep_and_run(app, settings, lambda: _notice(app, "reminder_1440").status == "sent")
    assert counts["requeued"] == 1
    assert _titles(emulator, who) == ["预约成功", "预约提醒"]
