"""Access token and JS-SDK ticket, shared by every process and host through Redis.

WeChat lets one credential be current at a time, so exactly one process may refresh it. A reader
takes the cached value; on a miss it takes a Redis lock, looks again (another process may have
refreshed while it waited) and only then calls WeChat. When an API call fails with 40001/42001 the
caller invalidates the token it used, and only if it is still the stored one: a token another
process has already replaced is left alone.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import redis as redis_lib

from wx_service.ground import redis_keys
from wx_service.ground.redis_keys import RedisKey

log = logging.getLogger(__name__)

# Refresh this long before WeChat says the credential expires.
EXPIRY_MARGIN = 300
MIN_TTL = 60

# Delete a key only if it still holds the value the caller saw.
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

Fetcher = Callable[[], tuple[str, int]]


class TokenUnavailable(RuntimeError):
    """No token could be had (the lock was not freed in time, or WeChat refused)."""


class SharedCredential:
    """One cached credential (token or ticket) with a single-flight refresh."""

    def __init__(self, redis: redis_lib.Redis, key_for_ttl: Callable[[int], RedisKey], lock: RedisKey,
                 fetch: Fetcher, lock_wait: float = 10.0) -> None:
        self.redis = redis
        self._key_for_ttl = key_for_ttl
        self._lock = lock
        self._fetch = fetch
        self._lock_wait = lock_wait
        self._delete_if = redis.register_script(_COMPARE_AND_DELETE)

    @property
    def key(self) -> str:
        return self._key_for_ttl(0).name

    def get(self) -> str:
        value = self.redis.get(self.key)
        if value:
            return value.decode() if isinstance(value, bytes) else value
        return self.refresh(stale=None)

    def refresh(self, stale: str | None) -> str:
        """Fetch a new value unless someone already replaced `stale` (or filled the miss)."""
        lock = self.redis.lock(self._lock.name, timeout=self._lock.ttl, blocking_timeout=self._lock_wait)
        if not lock.acquire():
            raise TokenUnavailable(f"could not take {self._lock.name} within {self._lock_wait}s")
        try:
            current = self.redis.get(self.key)
            if current:
                current = current.decode() if isinstance(current, bytes) else current
                if current != stale:
                    return current
            value, expires_in = self._fetch()
            key = self._key_for_ttl(max(int(expires_in) - EXPIRY_MARGIN, MIN_TTL))
            self.redis.set(key.name, value, ex=key.ttl)
            log.info("refreshed %s", key.name.rsplit(":", 1)[-1], extra={"ttl": key.ttl})
            return value
        finally:
            try:
                lock.release()
            except redis_lib.exceptions.LockError:
                log.warning("token lock expired before release; refresh took too long")

    def invalidate(self, failed: str) -> bool:
        """Forget `failed` if it is still the stored value. True if it was removed."""
        return bool(self._delete_if(keys=[self.key], args=[failed]))


def access_token_credential(redis: redis_lib.Redis, appid: str, fetch: Fetcher) -> SharedCredential:
    return SharedCredential(redis, lambda ttl: redis_keys.access_token(appid, ttl),
                            redis_keys.token_lock(appid, "access"), fetch)


def jsapi_ticket_credential(redis: redis_lib.Redis, appid: str, fetch: Fetcher) -> SharedCredential:
    return SharedCredential(redis, lambda ttl: redis_keys.jsapi_ticket(appid, ttl),
                            redis_keys.token_lock(appid, "jsapi_ticket"), fetch)


def card_ticket_credential(redis: redis_lib.Redis, appid: str, fetch: Fetcher) -> SharedCredential:
    return SharedCredential(redis, lambda ttl: redis_keys.card_ticket(appid, ttl),
                            redis_keys.token_lock(appid, "card_ticket"), fetch)
