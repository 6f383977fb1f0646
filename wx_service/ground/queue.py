"""The job queue: RQ on Redis in production, a thread in this process for the demo and tests.

Why RQ: jobs here are a handful of plain functions that call WeChat; RQ runs plain functions by
dotted path, keeps failed jobs in a registry an operator can inspect and requeue, retries on a
schedule of intervals, and needs nothing but the Redis we already run. Celery would add a second
broker configuration and a larger surface for the same work.

Both backends run a job the same way (`run_job`): inside the app, in its own transaction, with the
same classification of failures:
  - a transient WeChat error (system busy, network, 5xx) raises, and the job is retried with
    back-off until the intervals run out;
  - any other error (45015 window closed, 45047 quota used, bad openid, a bug) is final: it is
    logged and recorded as failed, and never repeated, because repeating it could not help and
    some calls (sending a message) must not happen twice.
"""
from __future__ import annotations

import importlib
import itertools
import logging
import queue as queue_lib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from wx_service.ground.logs import log_context

log = logging.getLogger(__name__)

QUEUE_NAME = "wx_service"


class FinalJobFailure(Exception):
    """Raised by run_job for an error that must not be retried."""


class JobQueue(Protocol):
    def enqueue(self, func_path: str, **kwargs: Any) -> None: ...

    def enqueue_in(self, seconds: float, func_path: str, **kwargs: Any) -> None:
        """Run the job no sooner than `seconds` from now (payment-code polling, retries)."""


def _resolve(func_path: str) -> Callable[..., Any]:
    module_name, _, attr = func_path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def is_transient(exc: BaseException) -> bool:
    return bool(getattr(exc, "transient", False))


# The app a worker process runs its jobs in, when a job is not started inside one: the worker
# command binds it before RQ forks its work-horses. The ground never builds an app itself.
_worker_app = None


def bind_worker_app(app) -> None:
    """Run jobs that start outside an app context (RQ's work-horses) in `app`."""
    global _worker_app
    _worker_app = app


def _app_for_jobs():
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app._get_current_object()
    if _worker_app is None:
        raise RuntimeError("a job ran outside an app: start workers with `flask --app wsgi worker`")
    return _worker_app


def run_job(func_path: str, kwargs: dict[str, Any]) -> Any:
    """Run one job in one transaction. Transient errors propagate (retry); others are final."""
    app = _app_for_jobs()
    with app.app_context(), log_context(job=func_path):
        db = app.extensions["wx"].db
        try:
            with db.unit_of_work():
                return _resolve(func_path)(**kwargs)
        except Exception as exc:
            if is_transient(exc):
                log.warning("job failed on a transient error; it will be retried: %s", exc)
                raise
            log.error("job failed for good: %s", exc, exc_info=not hasattr(exc, "errcode"))
            _mark_final()
            raise FinalJobFailure(f"{type(exc).__name__}: {exc}") from exc


def _mark_final() -> None:
    """Tell RQ not to retry this job, whatever retries it had left."""
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover
        return
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


class RQJobQueue:
    """Jobs on a real RQ queue; `flask --app wsgi worker` runs them."""

    # Delayed jobs depend on RQ's scheduler lock, which a worker killed with -9 holds for about a
    # minute: a job with a short, time-critical wait (a payment code) does better waiting itself.
    short_waits_in_job = True

    def __init__(self, redis, retry_intervals: tuple[int, ...]) -> None:
        from rq import Queue

        self.queue = Queue(QUEUE_NAME, connection=redis)
        self.retry_intervals = retry_intervals

    def enqueue(self, func_path: str, **kwargs: Any) -> None:
        from rq import Retry

        retry = Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals)) if self.retry_intervals else None
        self.queue.enqueue(run_job, func_path, kwargs, retry=retry, description=func_path)

    def enqueue_in(self, seconds: float, func_path: str, **kwargs: Any) -> None:
        """Scheduled by RQ's scheduler, which the worker command runs (`with_scheduler=True`)."""
        from rq import Retry

        if seconds <= 0:
            self.enqueue(func_path, **kwargs)
            return
        retry = Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals)) if self.retry_intervals else None
        self.queue.enqueue_in(timedelta(seconds=seconds), run_job, func_path, kwargs, retry=retry,
                              description=func_path)


class InProcessJobQueue:
    """A background thread in this process, for the demo and the embedded-default tests.

    One thread runs every job, so a job must not sleep in it (`short_waits_in_job` is False):
    delayed jobs are reliable here, use them.

    Same `run_job`, same retry classification and intervals as RQ; what it lacks is durability
    (a job queued when the process dies is lost), which is why production refuses it.
    """

    def __init__(self, app, retry_intervals: tuple[int, ...]) -> None:
        self.app = app
        self.retry_intervals = retry_intervals
        self.short_waits_in_job = False
        # Ordered by due time, so a job scheduled for later never holds up one due now.
        self._jobs: queue_lib.PriorityQueue[tuple[float, int, str, dict[str, Any], int]] = queue_lib.PriorityQueue()
        self._order = itertools.count()
        self._idle = threading.Condition()
        self._pending = 0
        self.failed: list[tuple[str, dict[str, Any], str]] = []
        self.completed: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="inprocess-jobs", daemon=True)
        self._thread.start()

    def enqueue(self, func_path: str, **kwargs: Any) -> None:
        self.enqueue_in(0, func_path, **kwargs)

    def enqueue_in(self, seconds: float, func_path: str, **kwargs: Any) -> None:
        with self._idle:
            self._pending += 1
        self._put(time.monotonic() + max(seconds, 0), func_path, kwargs, 0)

    def _put(self, due: float, func_path: str, kwargs: dict[str, Any], attempt: int) -> None:
        self._jobs.put((due, next(self._order), func_path, kwargs, attempt))

    def _loop(self) -> None:
        while True:
            due, _, func_path, kwargs, attempt = self._jobs.get()
            delay = due - time.monotonic()
            if delay > 0:
                # Wake at least every 0.2 s: a job enqueued meanwhile may be due sooner.
                time.sleep(min(delay, 0.2))
                self._put(due, func_path, kwargs, attempt)
                continue
            finished = True
            try:
                with self.app.app_context():
                    run_job(func_path, kwargs)
                self.completed.append(func_path)
            except FinalJobFailure as exc:
                self.failed.append((func_path, kwargs, str(exc)))
            except Exception as exc:  # transient
                if attempt < len(self.retry_intervals):
                    finished = False
                    self._put(time.monotonic() + self.retry_intervals[attempt], func_path, kwargs, attempt + 1)
                else:
                    log.error("job gave up after %d retries: %s", attempt, exc)
                    self.failed.append((func_path, kwargs, str(exc)))
            if finished:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued job (and its retries) is done. For tests and the CLI."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
