"""Fast-path dedup of WeChat's retries in Redis; the database holds the reply and its unique key
is the backstop.

A push is claimed by writing `claimed:<owner>` under its dedup key for DEDUP_PENDING_TTL seconds,
longer than WeChat's retry window (reference §3.6: no answer within 5 s, re-sent, three times in
all). The claim goes in the same Lua call as the replay guard and the read of the sender's
customer-service mark (service_desk.events), so the common path costs one round trip to Redis per
push. A retry that finds the claim is answered from the database: with the
stored reply if the first attempt has finished, else with `success`, after which WeChat stops
retrying. In that case the reply the first attempt produces never reaches WeChat and must go by
the customer-service API: the retry that answers `success` sets a `superseded` mark (once) and
queues the job that waits for that reply and sends it (webhook.deliver_late_reply). A failed
attempt deletes its own claim so the next retry runs the push again.

The claim runs on every push, so it skips redis-py's per-command machinery (see _Scripts).
"""
from __future__ import annotations

import logging
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

from wx_service.ground import redis_keys

log = logging.getLogger(__name__)

_DELETE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

# KEYS: claim key, nonce key, the sender's customer-service mark; ARGV: owner, claim ttl, body
# digest, nonce ttl. Returns {outcome, mark}: outcome -1 for a replay (the nonce came before with
# another body), 1 when claimed, 0 when another attempt holds the claim; mark 1 when the sender has
# an open customer-service conversation (so the push goes to the desk), else 0.
_CLAIM = """
local mark = redis.call('exists', KEYS[3])
if not redis.call('set', KEYS[2], ARGV[3], 'NX', 'EX', ARGV[4]) then
  if redis.call('get', KEYS[2]) ~= ARGV[3] then
    return {-1, mark}
  end
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {1, mark}
end
return {0, mark}
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


CLAIMED = b"claimed:"


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a push: ours to run, a replay, or another attempt's."""

    replay: bool = False  # the (timestamp, nonce) pair came before with another body
    owner: bytes | None = None  # set when this attempt runs the handler
    # Does the sender have an open customer-service conversation? None: unknown (Redis did not
    # answer), and the desk asks the database.
    in_conversation: bool | None = False

    @property
    def taken(self) -> bool:
        """Another attempt claimed the push first (it ran, or it is running)."""
        return not self.replay and self.owner is None


class PushDedup:
    def __init__(self, redis: redis_lib.Redis, appid: str, claim_ttl: int) -> None:
        self.redis = redis
        self.appid = appid
        self.claim_ttl = claim_ttl
        self._scripts = _Scripts(redis)
        self._release = self._scripts.register(_DELETE_IF_OWNER)
        self._claim = self._scripts.register(_CLAIM)

    def _key(self, dedup_key: str) -> redis_keys.RedisKey:
        return redis_keys.push_dedup(self.appid, dedup_key, self.claim_ttl)

    def claim(self, dedup_key: str, nonce: "NonceGuard", timestamp: str, nonce_value: str, body_digest: str,
              openid: str = "") -> Claim:
        """Check the nonce against replay, claim the push and read the sender's customer-service
        mark, in one round trip."""
        key = self._key(dedup_key)
        nonce_key = nonce.key(timestamp, nonce_value)
        mark_key = redis_keys.desk_open(self.appid, openid)
        owner = CLAIMED + secrets.token_hex(8).encode()
        try:
            result, mark = self._scripts.run(self._claim, [key.name, nonce_key.name, mark_key.name],
                                             [owner, key.ttl, body_digest, nonce_key.ttl])
        except redis_lib.RedisError as exc:
            # Redis did not answer: this attempt runs the handler unclaimed, and the push's unique
            # row in the database is the only dedup (a retry whose first attempt finished gets the
            # recorded reply; two attempts running at once both run the handler, one INSERT loses).
            log.warning("push dedup without Redis (%s): the database row decides", type(exc).__name__)
            return Claim(owner=owner, in_conversation=None)
        if result == -1:
            return Claim(replay=True)
        return Claim(owner=owner, in_conversation=mark == 1) if result == 1 else Claim()

    def release(self, dedup_key: str, owner: bytes) -> None:
        """Give up our claim (the handler failed), so that WeChat's next retry runs the push. With
        Redis away the claim may be lost already; the retry then runs the push anyway."""
        try:
            self._scripts.run(self._release, [self._key(dedup_key).name], [owner])
        except redis_lib.RedisError as exc:
            log.warning("push claim not released (%s); it expires by itself", type(exc).__name__)

    def is_claimed(self, dedup_key: str) -> bool:
        return bool(self.redis.exists(self._key(dedup_key).name))

    def mark_superseded(self, dedup_key: str) -> bool:
        """Note that a retry was told `success` while the push ran; True only the first time, so
        the late reply is queued once however many retries come."""
        mark = redis_keys.push_dedup(self.appid, dedup_key + ":superseded", self.claim_ttl)
        return bool(self.redis.set(mark.name, b"1", nx=True, ex=mark.ttl))


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
        """Remember the pair with this body; True if it was seen with another body. Without Redis
        nothing is remembered and nothing is called a replay (the signature still holds)."""
        key = self.key(timestamp, nonce)
        try:
            if self.redis.set(key.name, body_digest, nx=True, ex=key.ttl):
                return False
            seen = self.redis.get(key.name)
        except redis_lib.RedisError:
            return False
        seen = seen.decode() if isinstance(seen, bytes) else seen
        return seen is not None and seen != body_digest
