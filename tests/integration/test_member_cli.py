"""Member operator commands and the daily-job scheduler, run through Flask's CLI."""
from __future__ import annotations

import importlib
import os
import time
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from members import coupons
from members.ledger import SHANGHAI
from members.models import Coupon, PointsAdjustment, Staff
from tests.conftest import requires_redis
from tests.integration.members_helpers import assert_ledger_consistent, make_member, uow
from wx_service.ground.db import utcnow


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_staff_and_points_commands_follow_the_approval_rules(app):
    member = make_member(app)
    assert cli(app, "staff", "add", "alice", "Alice Li").exit_code == 0
    assert cli(app, "staff", "add", "bob", "Bob Wu").exit_code == 0
    duplicate = cli(app, "staff", "add", "alice", "Again")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output

    small = cli(app, "points", "adjust", str(member), "300", "--reason", "goodwill", "--staff", "alice")
    assert small.exit_code == 0 and "applied: +300 points" in small.output
    take = cli(app, "points", "adjust", str(member), "-100", "--reason", "correction", "--staff", "alice")
    assert take.exit_code == 0 and "applied: -100 points" in take.output
    too_much = cli(app, "points", "adjust", str(member), "-201", "--reason", "x", "--staff", "alice")
    assert too_much.exit_code != 0 and "refused" in too_much.output

    big = cli(app, "points", "adjust", str(member), "5000", "--reason", "lost receipt", "--staff", "alice")
    assert big.exit_code == 0 and "pending" in big.output
    with uow(app) as session:
        adj_id = session.scalars(select(PointsAdjustment.id).where(PointsAdjustment.status == "pending")).one()
    same = cli(app, "points", "approve", str(adj_id), "--staff", "alice")
    assert same.exit_code != 0 and "second staff member" in same.output
    ok = cli(app, "points", "approve", str(adj_id), "--staff", "bob")
    assert ok.exit_code == 0 and "approved and applied" in ok.output
    again = cli(app, "points", "approve", str(adj_id), "--staff", "bob")
    assert again.exit_code != 0 and "applied, not pending" in again.output
    assert assert_ledger_consistent(app, member) == 5200

    cli(app, "points", "adjust", str(member), "2000", "--reason", "promo", "--staff", "bob")
    with uow(app) as session:
        adj_id = session.scalars(select(PointsAdjustment.id).where(PointsAdjustment.status == "pending")).one()
    rejected = cli(app, "points", "reject", str(adj_id), "--staff", "alice")
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    assert assert_ledger_consistent(app, member) == 5200

    unknown = cli(app, "points", "adjust", str(member), "10", "--reason", "x", "--staff", "mallory")
    assert unknown.exit_code != 0 and "no active staff member 'mallory'" in unknown.output
    no_member = cli(app, "points", "adjust", "99999", "10", "--reason", "x", "--staff", "alice")
    assert no_member.exit_code != 0 and "no member" in no_member.output


def test_coupon_redeem_once_at_the_counter(app):
    member = make_member(app)
    cli(app, "staff", "add", "carol", "Carol")
    with uow(app):
        code = coupons.issue(member, "birthday", "生日礼券", 5_000, 30, "birthday:x:2026")[0].code
    first = cli(app, "coupon", "redeem", code, "--staff", "carol")
    assert first.exit_code == 0 and "coupon redeemed: 生日礼券, 50.00 yuan" in first.output
    second = cli(app, "coupon", "redeem", code, "--staff", "carol")
    assert second.exit_code != 0 and "already redeemed" in second.output
    with uow(app) as session:
        carol = session.scalars(select(Staff.id).where(Staff.username == "carol")).one()
        assert session.scalars(select(Coupon)).one().redeemed_by_id == carol


def test_benefits_run_for_a_date_is_safe_to_repeat(app, emulator, run_jobs):
    openid = "oCliBirthday" + "y" * 16
    emulator.add_shopper(openid, "小美").subscribed = True
    member = make_member(app, name="小美", birthday=date(1990, 4, 1), oa_openid=openid,
                         joined_at=datetime(2025, 4, 1, 3, tzinfo=timezone.utc))
    first = cli(app, "benefits", "run", "--date", "2026-04-01")
    assert first.exit_code == 0, first.output
    assert f"member {member}: birthday coupon issued, greeting queued" in first.output
    assert "2 coupons issued, 0 already issued" in first.output
    second = cli(app, "benefits", "run", "--date", "2026-04-01")
    assert "0 coupons issued, 2 already issued" in second.output
    run_jobs()
    assert len([line for line in emulator.shoppers[openid].chat if line["via"] == "template"]) == 2
    bad = cli(app, "benefits", "run", "--date", "April 1st")
    assert bad.exit_code != 0


@pytest.fixture
def restore_tz():
    saved = os.environ.get("TZ")
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_scheduler_registers_the_daily_jobs_in_store_time(wx, restore_tz):
    from wx_service.edges.schedule import build_scheduler
    from wx_service.ground.queue import run_job

    jobs = {job.name: job for job in build_scheduler(wx.redis).get_jobs()}
    assert {name: job.cron for name, job in jobs.items()} == {
        "benefits": "0 9 * * *", "levels": "0 3 * * *", "card-resync": "0 3 * * *", "points-expiry": "30 0 1 1 *",
        "reconciliation": "30 10 * * *", "pay-close-expired": "* * * * *", "pay-query-stale": "* * * * *",
        "pay-resume-codepay": "* * * * *", "desk-offers": "* * * * *",
        "desk-marks": "* * * * *", "desk-stalled": "* * * * *", "rsv-reminders": "* * * * *",
        "rsv-sweep": "* * * * *", "rsv-stalled-notices": "* * * * *", "content-publish": "* * * * *",
        "content-images": "17 * * * *", "brand-news-stalled": "* * * * *"}
    for name, job in jobs.items():  # every path names a function that exists
        module, _, attr = job.args[0].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), name
    assert jobs["benefits"].func is run_job
    assert jobs["benefits"].args == ("members.benefit_jobs.grant_birthday_and_anniversary", {})
    # 09:00 in Shanghai is 01:00 UTC, 03:00 is 19:00 UTC, 1 Jan 00:30 is 16:30 UTC on 31 Dec
    assert (jobs["benefits"].next_enqueue_time.hour, jobs["benefits"].next_enqueue_time.minute) == (1, 0)
    assert jobs["levels"].next_enqueue_time.hour == 19
    expiry = jobs["points-expiry"].next_enqueue_time
    assert (expiry.month, expiry.day, expiry.hour, expiry.minute) == (12, 31, 16, 30)


def test_scheduler_command_refuses_without_a_shared_queue(app, wx):
    if wx.settings.JOB_QUEUE == "rq":
        pytest.skip("this configuration has a shared queue")
    result = cli(app, "scheduler")
    assert result.exit_code != 0 and "JOB_QUEUE is inprocess" in result.output


@requires_redis
def test_a_due_scheduled_job_runs_on_a_worker(app, wx, emulator, run_jobs, restore_tz):
    from wx_service.edges.schedule import build_scheduler

    today = utcnow().astimezone(SHANGHAI).date()
    member = make_member(app, birthday=date(1992, today.month, today.day))
    scheduler = build_scheduler(wx.redis)
    for job in scheduler.get_jobs():
        job.next_enqueue_time = utcnow() if job.name == "benefits" else job.next_enqueue_time
    assert [job.name for job in scheduler.enqueue_jobs()] == ["benefits"]
    run_jobs()
    with uow(app) as session:
        assert session.scalars(select(Coupon.kind).where(Coupon.member_id == member)).all() == ["birthday"]


@requires_redis
def test_the_scheduler_command_runs_until_stopped(settings):
    """The real command in its own process: it lists the jobs, registers with RQ, stops on SIGTERM."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
                            cwd=Path(__file__).resolve().parents[2], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("benefits: '0 9 * * *' Asia/Shanghai")
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
