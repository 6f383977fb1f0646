"""Fast-path dedup of WeChat's retries in Redis (the database's unique key is the backstop).

A key per push moves through two states: `pending:<owner>` while the first attempt runs, then
`done:<response bytes>` for as long as WeChat may retry. A retry that finds `pending` gets
`success` (WeChat then stops retrying and we answer later if needed); one that finds `done` gets
the very same bytes. A failed attempt deletes its own pending mark so the next retry runs again.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis as redis_lib

from wx_service import redis_keys

_DELETE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

PENDING = b"pending:"
DONE = b"done:"


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a push: ours to run, or an answer for a retry."""

    owner: bytes | None = None  # set when this attempt runs the handler
    in_progress: bool = False  # another attempt is running it
    stored_response: bytes | None = None  # it was handled; answer with these bytes


class PushDedup:
    def __init__(self, redis: redis_lib.Redis, appid: str, pending_ttl: int, done_ttl: int) -> None:
        self.redis = redis
        self.appid = appid
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl
        self._release = redis.register_script(_DELETE_IF_OWNER)

    def _key(self, dedup_key: str, ttl: int) -> redis_keys.RedisKey:
        return redis_keys.push_dedup(self.appid, dedup_key, ttl)

    def claim(self, dedup_key: str) -> Claim:
        key = self._key(dedup_key, self.pending_ttl)
        for _ in range(2):
            owner = PENDING + secrets.token_hex(8).encode()
            if self.redis.set(key.name, owner, nx=True, ex=key.ttl):
                return Claim(owner=owner)
            current = self.redis.get(key.name)
            if current is None:
                continue  # expired between SET and GET; try once more
            if current.startswith(PENDING):
                return Claim(in_progress=True)
            return Claim(stored_response=current[len(DONE):])
        return Claim(in_progress=True)

    def complete(self, dedup_key: str, response: bytes) -> None:
        key = self._key(dedup_key, self.done_ttl)
        self.redis.set(key.name, DONE + response, ex=key.ttl)

    def release(self, dedup_key: str, owner: bytes) -> None:
        self._release(keys=[self._key(dedup_key, 0).name], args=[owner])


class NonceGuard:
    """Remembers the body first seen with a (timestamp, nonce) pair. WeChat's retries resend the
    same body with the same pair; a different body under a pair already used is a replay."""

    def __init__(self, redis: redis_lib.Redis, appid: str, window: int) -> None:
        self.redis = redis
        self.appid = appid
        self.window = window

    def is_replay(self, timestamp: str, nonce: str, body_digest: str) -> bool:
        key = redis_keys.push_nonce(self.appid, timestamp, nonce, self.window * 2)
        if self.redis.set(key.name, body_digest, nx=True, ex=key.ttl):
            return False
        seen = self.redis.get(key.name)
        seen = seen.decode() if isinstance(seen, bytes) else seen
        return seen is not None and seen != body_digest
