"""The shared services an app is built from: database, Redis, job queue, WeChat client.

Domain packages import from here only (never a blueprint, never flask.request): `db` for the unit
of work, `enqueue_after_commit` to ask for background work, `wechat_client` inside jobs.
"""
from __future__ import annotations

from typing import Any

import redis as redis_lib
from flask import Flask, current_app

from config import Settings
from wx_service.ground.db import Database

db = Database()


class Services:
    """Per-app holder, stored as app.extensions['wx']."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.settings = settings
        self.db = db
        db.init(settings.DATABASE_URL)
        self.redis = make_redis(settings)
        if settings.JOB_QUEUE == "rq":
            from wx_service.ground.queue import RQJobQueue

            self.queue = RQJobQueue(self.redis, settings.JOB_RETRY_INTERVALS)
        else:
            from wx_service.ground.queue import InProcessJobQueue

            self.queue = InProcessJobQueue(app, settings.JOB_RETRY_INTERVALS)
        self._client = None

    @property
    def wechat_client(self):
        if self._client is None:
            from wx_service.ground.wechat_client import StoreWeChatClient

            s = self.settings
            self._client = StoreWeChatClient(s.WECHAT_APPID, s.WECHAT_SECRET, s.WECHAT_API_BASE, self.redis)
        return self._client


_memory_redis_server = None


def make_redis(settings: Settings) -> redis_lib.Redis:
    """A real Redis client, or for memory:// one in-process fakeredis server shared by the process."""
    if settings.uses_memory_redis:
        import fakeredis

        global _memory_redis_server
        if _memory_redis_server is None:
            _memory_redis_server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_memory_redis_server)
    return redis_lib.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3,
                                    health_check_interval=30)


def services() -> Services:
    return current_app.extensions["wx"]


def settings() -> Settings:
    return services().settings


def redis() -> redis_lib.Redis:
    return services().redis


def wechat_client():
    """The WeChat API client. For jobs only: the webhook must not wait on WeChat."""
    return services().wechat_client


def enqueue_after_commit(func_path: str, *, delay: float = 0, **kwargs: Any) -> None:
    """Queue a job once the current transaction commits (and never if it rolls back), to run
    no sooner than `delay` seconds after that."""
    queue = services().queue

    def queue_it() -> None:
        if delay > 0:
            queue.enqueue_in(delay, func_path, **kwargs)
        else:
            queue.enqueue(func_path, **kwargs)

    queue_it.label = f"queue {func_path}"  # type: ignore[attr-defined]  # named in the log if it fails
    db.after_commit(queue_it)
