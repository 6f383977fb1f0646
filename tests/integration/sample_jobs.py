"""Job functions for the queue tests, importable by dotted path as real jobs are."""
from __future__ import annotations

from wx_service.ground.extensions import redis
from wx_service.ground.wechat_client import WeChatApiError


def _count(name: str) -> int:
    return int(redis().incr(f"test:jobs:{name}"))


def flaky_then_ok(name: str, failures: int) -> None:
    """System busy `failures` times, then succeeds."""
    if _count(name) <= failures:
        raise WeChatApiError(-1, "system error", transient=True)
    redis().set(f"test:jobs:{name}:done", 1)


def window_closed(name: str) -> None:
    _count(name)
    raise WeChatApiError(45015, "response out of time limit or subscription is canceled", transient=False)


def always_busy(name: str) -> None:
    _count(name)
    raise WeChatApiError(-1, "system error", transient=True)


def writes_then_fails(name: str) -> None:
    """A job's database work is rolled back when it fails."""
    from members import service

    _count(name)
    service.record_follow("o-job-rollback", 1_700_000_000)
    raise WeChatApiError(40003, "invalid openid", transient=False)
