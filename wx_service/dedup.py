"""Fast-path dedup of WeChat's retries in Redis (the database's unique key is the backstop).

A key per push moves through two states: `pending:<owner>` while the first attempt runs, then
`done:<response bytes>` for as long as WeChat may retry. A retry that finds `pending` gets
`success` (WeChat then stops retrying and we answer later if needed); one that finds `done` gets
the very same bytes. A failed attempt deletes its own pending mark so the next retry runs again.

A retry told `success` also leaves a `superseded` mark: WeChat gave up on the first attempt, so the
reply that attempt produces never reaches the shopper and must go by the customer-service API.
Claiming and completing are atomic (Lua), so the mark is never set after the completer looked.

Both scripts run on every push, so they skip redis-py's per-command machinery (see _Scripts).
"""
from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import redis as redis_lib
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from wx_service import redis_keys

_DELETE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[2])
  return redis.call('del', KEYS[1])
end
return 0
"""

# KEYS: dedup key, superseded mark, nonce key; ARGV: owner, ttl, body digest, nonce ttl.
# Returns {-1} for a replay (the nonce came with another body), {1} when claimed, else {0, value}.
# One round trip does the replay guard and the claim: this runs on every push.
_CLAIM = """
if not redis.call('set', KEYS[3], ARGV[3], 'NX', 'EX', ARGV[4]) then
  if redis.call('get', KEYS[3]) ~= ARGV[3] then
    return {-1}
  end
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {1}
end
local current = redis.call('get', KEYS[1])
if not current then
  return {0}
end
if string.sub(current, 1, 8) == 'pending:' then
  redis.call('set', KEYS[2], '1', 'EX', ARGV[2])
end
return {0, current}
"""

# KEYS: dedup key, superseded mark; ARGV: done value, ttl. Returns 1 if a retry was told success.
_COMPLETE = """
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
return redis.call('del', KEYS[2])
"""

_PLAIN_CONNECTIONS = (Connection, SSLConnection, UnixDomainSocketConnection)


def _pack(head: bytes, count: int, args: Sequence[bytes | str | int]) -> bytes:
    """One RESP command (an array of bulk strings): `head` is its first `count` elements, already
    encoded (see _head); `args` are the rest."""
    out = [b"*%d\r\n" % (count + len(args)), head]
    for arg in args:
        if arg.__class__ is not bytes:
            arg = arg.encode("utf-8") if isinstance(arg, str) else b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _head(*parts: bytes | str | int) -> bytes:
    return _pack(b"", 0, parts).split(b"\r\n", 1)[1]  # without the array header


class _Scripts:
    """Runs this module's Lua scripts with one round trip each, as cheaply as the client allows.

    Against a real Redis server every thread keeps its own connection (built from the client's pool
    settings: host, db, password, TLS, timeouts) and writes EVALSHA on it directly. redis-py 8's
    generic path (pool checkout and release, observability hooks, retry wrapper) costs about three
    times the round trip itself, and these two calls run on every push. Any other client (fakeredis
    in the embedded test mode) goes through redis-py's own Script objects."""

    def __init__(self, client: redis_lib.Redis) -> None:
        self.client = client
        pool = getattr(client, "connection_pool", None)
        self._direct = (type(client) is redis_lib.Redis and pool is not None
                        and pool.connection_class in _PLAIN_CONNECTIONS)
        self._local = threading.local()
        self._heads: dict[tuple[str, int], bytes] = {}

    def register(self, source: str):
        return self.client.register_script(source)

    def _connection(self) -> Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():  # never share a socket across a fork
            pool = self.client.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
            local.conn, local.pid = conn, os.getpid()
        return conn

    def _evalsha_head(self, script, numkeys: int) -> bytes:
        """`EVALSHA <sha> <numkeys>` as RESP, encoded once per script."""
        heads = self._heads
        head = heads.get((script.sha, numkeys))
        if head is None:
            head = heads[(script.sha, numkeys)] = _head(b"EVALSHA", script.sha, numkeys)
        return head

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.disconnect()

    def run(self, script, keys: Sequence[str], args: Sequence[bytes | str | int]):
        if not self._direct:
            return script(keys=keys, args=args)
        # An idle connection may have been closed by the server (restart, timeout): one retry on a
        # fresh connection, as redis-py's default retry policy would do.
        for attempt in (1, 2):
            conn = self._connection()
            try:
                try:
                    conn.send_packed_command([_pack(self._evalsha_head(script, len(keys)), 3, (*keys, *args))],
                                             check_health=False)
                    return conn.read_response()
                except NoScriptError:  # the server restarted or ran SCRIPT FLUSH: EVAL loads it again
                    conn.send_packed_command([_pack(b"", 0, (b"EVAL", script.script, len(keys), *keys, *args))],
                                             check_health=False)
                    return conn.read_response()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


PENDING = b"pending:"
DONE = b"done:"


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a push: ours to run, or an answer for a retry."""

    replay: bool = False  # the (timestamp, nonce) pair came before with another body
    owner: bytes | None = None  # set when this attempt runs the handler
    in_progress: bool = False  # another attempt is running it
    stored_response: bytes | None = None  # it was handled; answer with these bytes


class PushDedup:
    def __init__(self, redis: redis_lib.Redis, appid: str, pending_ttl: int, done_ttl: int) -> None:
        self.redis = redis
        self.appid = appid
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl
        self._scripts = _Scripts(redis)
        self._release = self._scripts.register(_DELETE_IF_OWNER)
        self._claim = self._scripts.register(_CLAIM)
        self._complete = self._scripts.register(_COMPLETE)

    def _key(self, dedup_key: str, ttl: int) -> redis_keys.RedisKey:
        return redis_keys.push_dedup(self.appid, dedup_key, ttl)

    def _superseded(self, dedup_key: str) -> str:
        return redis_keys.push_dedup(self.appid, dedup_key + ":superseded", self.pending_ttl).name

    def claim(self, dedup_key: str, nonce: "NonceGuard", timestamp: str, nonce_value: str, body_digest: str) -> Claim:
        """Check the nonce against replay and claim the push, in one round trip."""
        key = self._key(dedup_key, self.pending_ttl)
        nonce_key = nonce.key(timestamp, nonce_value)
        owner = PENDING + secrets.token_hex(8).encode()
        result = self._scripts.run(self._claim, [key.name, self._superseded(dedup_key), nonce_key.name],
                                   [owner, key.ttl, body_digest, nonce_key.ttl])
        if result[0] == -1:
            return Claim(replay=True)
        if result[0] == 1:
            return Claim(owner=owner)
        current = result[1] if len(result) > 1 else None
        if current is None or current.startswith(PENDING):
            return Claim(in_progress=True)
        return Claim(stored_response=current[len(DONE):])

    def complete(self, dedup_key: str, response: bytes) -> bool:
        """Store the response for retries; True if a retry was told `success` meanwhile (so this
        response never reached WeChat)."""
        key = self._key(dedup_key, self.done_ttl)
        return bool(self._scripts.run(self._complete, [key.name, self._superseded(dedup_key)],
                                      [DONE + response, key.ttl]))

    def release(self, dedup_key: str, owner: bytes) -> None:
        self._scripts.run(self._release, [self._key(dedup_key, 0).name, self._superseded(dedup_key)], [owner])


class NonceGuard:
    """Remembers the body first seen with a (timestamp, nonce) pair. WeChat's retries resend the
    same body with the same pair; a different body under a pair already used is a replay.

    For pushes that parse, the check is part of PushDedup.claim (one Redis call); a body refused
    before it could be claimed is still remembered here, so its query cannot be reused."""

    def __init__(self, redis: redis_lib.Redis, appid: str, window: int) -> None:
        self.redis = redis
        self.appid = appid
        self.window = window

    def key(self, timestamp: str, nonce: str) -> redis_keys.RedisKey:
        return redis_keys.push_nonce(self.appid, timestamp, nonce, self.window * 2)

    def is_replay(self, timestamp: str, nonce: str, body_digest: str) -> bool:
        """Remember the pair with this body; True if it was seen with another body."""
        key = self.key(timestamp, nonce)
        if self.redis.set(key.name, body_digest, nx=True, ex=key.ttl):
            return False
        seen = self.redis.get(key.name)
        seen = seen.decode() if isinstance(seen, bytes) else seen
        return seen is not None and seen != body_digest
