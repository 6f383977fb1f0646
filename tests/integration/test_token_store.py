"""The shared access token: one refresh for many processes, invalidation only of the failed token."""
from __future__ import annotations

import multiprocessing
import os

import pytest
import requests

from tests.conftest import requires_redis
from wx_service.ground.wechat_client import StoreWeChatClient, WeChatApiError


def _client(app) -> StoreWeChatClient:
    return app.extensions["wx"].wechat_client


def test_token_is_fetched_once_and_shared(app, emulator):
    client = _client(app)
    first = client.tokens.get()
    assert client.tokens.get() == first
    assert emulator.calls.get("stable_token") == 1


def test_expired_token_is_replaced_and_the_call_retried_once(app, emulator, base_url):
    client = _client(app)
    old = client.tokens.get()
    requests.post(f"{base_url}/_emulator/control/expire-tokens", json={})
    emulator.shoppers  # noqa: B018 - the emulator's state is what we look at below
    client.menu.create({"button": [{"type": "click", "name": "x", "key": "X"}]})
    assert emulator.menu is not None
    assert client.tokens.get() != old
    assert emulator.calls["stable_token"] == 2
    assert emulator.calls["menu/create"] == 2  # the failed call and its single retry


def test_a_token_error_after_the_retry_is_not_retried_again(app, emulator, base_url):
    client = _client(app)
    client.tokens.get()
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "menu/get", "errcode": 40001, "times": 5})
    with pytest.raises(WeChatApiError) as err:
        client.menu.get()
    assert err.value.errcode == 40001 and not err.value.transient
    assert emulator.calls["menu/get"] == 2


def test_invalidate_leaves_a_token_another_process_already_replaced(app):
    tokens = _client(app).tokens
    tokens.redis.set(tokens.key, "token-from-process-b", ex=600)
    assert tokens.invalidate("stale-token-process-a-used") is False
    assert tokens.get() == "token-from-process-b"
    assert tokens.invalidate("token-from-process-b") is True


def test_refresh_after_a_failure_keeps_a_newer_token(app, emulator):
    tokens = _client(app).tokens
    tokens.redis.set(tokens.key, "newer", ex=600)
    assert tokens.refresh(stale="older") == "newer"
    assert emulator.calls.get("stable_token") is None


def test_system_busy_on_stable_token_is_transient(app, base_url):
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "stable_token", "errcode": -1})
    with pytest.raises(WeChatApiError) as err:
        _client(app).tokens.get()
    assert err.value.transient


def _race(redis_url: str, appid: str, secret: str, api_base: str, barrier, results) -> None:
    import redis as redis_lib

    client = StoreWeChatClient(appid, secret, api_base, redis_lib.Redis.from_url(redis_url))
    barrier.wait()
    results.put((os.getpid(), client.tokens.get()))


@requires_redis
def test_token_refresh_race_across_processes_makes_one_call(app, emulator, base_url, settings):
    """Eight processes start at once with an empty cache and a slow WeChat: one refresh, one token."""
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "stable_token", "delay": 0.5})
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(settings.REDIS_URL, settings.WECHAT_APPID, settings.WECHAT_SECRET,
                                              settings.WECHAT_API_BASE, barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    got = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len({pid for pid, _ in got}) == 8
    assert len({token for _, token in got}) == 1
    assert emulator.calls["stable_token"] == 1


def test_token_refresh_race_across_threads_makes_one_call(app, emulator, base_url):
    """The same property inside one process (runs on the embedded defaults too)."""
    import threading

    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "stable_token", "delay": 0.3})
    client = _client(app)
    barrier = threading.Barrier(6)
    seen: list[str] = []

    def worker() -> None:
        barrier.wait()
        seen.append(client.tokens.get())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 6 and len(set(seen)) == 1
    assert emulator.calls["stable_token"] == 1
