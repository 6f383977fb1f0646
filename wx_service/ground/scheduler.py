"""Recurring jobs on RQ's cron scheduler, and the demo's stand-in for it.

The scheduler only enqueues: the work runs in the workers through `run_job` (one transaction,
the same retry rules as every job). RQ reads cron fields in the process's local time, so the
scheduler process runs on store time (Asia/Shanghai, no daylight saving) whatever the host's zone.
Which jobs run when is the app's to say (`wx_service.edges.schedule`); the ground knows only how.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from wx_service.ground.queue import QUEUE_NAME, run_job

STORE_TZ = "Asia/Shanghai"

# (name, cron in store time, job path)
CronJob = tuple[str, str, str]


def use_store_time() -> None:
    os.environ["TZ"] = STORE_TZ
    time.tzset()


def build_cron_scheduler(redis: Any, jobs: Iterable[CronJob]):
    """A CronScheduler with `jobs` registered (each runs as run_job(path, {}))."""
    from rq.cron import CronScheduler

    use_store_time()
    scheduler = CronScheduler(connection=redis, name=f"wx-daily:{os.getpid()}")
    for name, cron, path in jobs:
        scheduler.register(run_job, QUEUE_NAME, args=(path, {}), cron=cron, name=name, job_timeout=3600)
    return scheduler


def start_interval_thread(queue: Any, paths: Iterable[str], every: float = 60.0) -> None:
    """Without RQ (the demo's in-process queue): a daemon thread that puts `paths` on the queue
    every `every` seconds."""
    paths = tuple(paths)

    def tick() -> None:
        while True:
            time.sleep(every)
            for path in paths:
                queue.enqueue(path)

    threading.Thread(target=tick, name="interval-jobs", daemon=True).start()
