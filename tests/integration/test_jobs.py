"""Jobs: transient WeChat errors are retried with back-off, final ones never repeated."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from members.models import Follower
from tests.conftest import requires_redis


def _attempts(wx, name: str) -> int:
    return int(wx.redis.get(f"test:jobs:{name}") or 0)


def test_transient_errors_are_retried_until_the_job_succeeds(app, wx, run_jobs):
    wx.queue.enqueue("tests.integration.sample_jobs.flaky_then_ok", name="flaky", failures=2)
    run_jobs()
    assert _attempts(wx, "flaky") == 3
    assert wx.redis.get("test:jobs:flaky:done") is not None


def test_final_errors_are_not_retried(app, wx, run_jobs):
    wx.queue.enqueue("tests.integration.sample_jobs.window_closed", name="closed")
    run_jobs()
    assert _attempts(wx, "closed") == 1


def test_retries_stop_when_the_intervals_run_out(app, wx, run_jobs, settings):
    wx.queue.enqueue("tests.integration.sample_jobs.always_busy", name="busy")
    run_jobs()
    assert _attempts(wx, "busy") == 1 + len(settings.JOB_RETRY_INTERVALS)


def test_a_failed_job_leaves_no_database_writes(app, wx, run_jobs):
    wx.queue.enqueue("tests.integration.sample_jobs.writes_then_fails", name="rollback")
    run_jobs()
    assert _attempts(wx, "rollback") == 1
    with app.app_context():
        assert wx.db.session.scalar(select(Follower).where(Follower.openid == "o-job-rollback")) is None


def test_after_commit_jobs_are_dropped_when_the_transaction_rolls_back(app, wx, run_jobs, emulator):
    from wx_service.ground.extensions import enqueue_after_commit

    with app.app_context():
        with pytest.raises(RuntimeError):
            with wx.db.unit_of_work():
                enqueue_after_commit("tests.integration.sample_jobs.flaky_then_ok", name="never", failures=0)
                raise RuntimeError("the request failed")
        with wx.db.unit_of_work():
            enqueue_after_commit("tests.integration.sample_jobs.flaky_then_ok", name="committed", failures=0)
    run_jobs()
    assert _attempts(wx, "never") == 0
    assert _attempts(wx, "committed") == 1


@requires_redis
def test_rq_records_final_failures_in_its_failed_registry(app, wx, run_jobs):
    from rq.registry import FailedJobRegistry

    wx.queue.enqueue("tests.integration.sample_jobs.window_closed", name="rq-closed")
    run_jobs()
    registry = FailedJobRegistry(queue=wx.queue.queue)
    assert len(registry.get_job_ids()) == 1
    assert _attempts(wx, "rq-closed") == 1
