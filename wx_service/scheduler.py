"""The daily jobs and the payment sweeps, on RQ's cron scheduler (`flask --app wsgi scheduler`).

The scheduler only enqueues: the work runs in the workers through `run_job` (one transaction,
the same retry rules as every job). RQ reads cron fields in the process's local time, so the
scheduler process runs on store time (Asia/Shanghai, no daylight saving) whatever the host's zone.
Every job is idempotent, so two schedulers, or a rerun after an outage, do no harm.
"""
from __future__ import annotations

import os
import time
from typing import Any

from wx_service.queue import QUEUE_NAME, run_job

STORE_TZ = "Asia/Shanghai"

# (name, cron in store time, job path)
DAILY_JOBS: tuple[tuple[str, str, str], ...] = (
    ("benefits", "0 9 * * *", "members.benefit_jobs.grant_birthday_and_anniversary"),
    ("levels", "0 3 * * *", "members.benefit_jobs.recompute_levels"),
    ("card-resync", "0 3 * * *", "members.benefit_jobs.resync_cards"),
    ("points-expiry", "30 0 1 1 *", "members.benefit_jobs.expire_points_for_year"),
    # WeChat's trade bill for day D is ready from 10:00 the next day (Beijing time).
    ("reconciliation", "30 10 * * *", "payments.reconciliation.reconcile_yesterday"),
)

# The payment sweeps, every minute: each claims a bounded batch and is safe to run twice at once.
SWEEP_JOBS: tuple[tuple[str, str, str], ...] = (
    ("pay-close-expired", "* * * * *", "payments.jobs.close_expired_orders"),
    ("pay-query-stale", "* * * * *", "payments.jobs.query_stale_orders"),
    ("pay-resume-codepay", "* * * * *", "payments.cashier.resume_codepay_flows"),
)


def use_store_time() -> None:
    os.environ["TZ"] = STORE_TZ
    time.tzset()


def build_scheduler(redis: Any):
    """A CronScheduler with the daily jobs registered (each runs as run_job(path, {}))."""
    from rq.cron import CronScheduler

    use_store_time()
    scheduler = CronScheduler(connection=redis, name=f"wx-daily:{os.getpid()}")
    for name, cron, path in DAILY_JOBS + SWEEP_JOBS:
        scheduler.register(run_job, QUEUE_NAME, args=(path, {}), cron=cron, name=name, job_timeout=3600)
    return scheduler


def start_demo_sweeps(queue: Any, every: float = 60.0) -> None:
    """The demo's stand-in for the cron scheduler (which needs RQ): a daemon thread that puts the
    payment sweeps on the in-process queue every minute, so expired QR codes close and stalled
    payment-code flows resume in `./dev demo` as they do in production."""
    import threading

    def tick() -> None:
        while True:
            time.sleep(every)
            for _name, _cron, path in SWEEP_JOBS:
                queue.enqueue(path)

    threading.Thread(target=tick, name="demo-sweeps", daemon=True).start()
