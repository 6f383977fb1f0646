"""Every Redis key the service uses, built in one place: namespaced by app id, each with a TTL.

Callers pass `RedisKey.name` to Redis and `RedisKey.ttl` as its expiry, so no key is written
without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PREFIX = "wx"


@dataclass(frozen=True)
class RedisKey:
    name: str
    ttl: int  # seconds


def access_token(appid: str, ttl: int) -> RedisKey:
    return RedisKey(f"{PREFIX}:{appid}:token:access", ttl)


def jsapi_ticket(appid: str, ttl: int) -> RedisKey:
    return RedisKey(f"{PREFIX}:{appid}:token:jsapi_ticket", ttl)


def card_ticket(appid: str, ttl: int) -> RedisKey:
    """The card api_ticket (ticket/getticket?type=wx_card) that signs wx.addCard's cardExt."""
    return RedisKey(f"{PREFIX}:{appid}:token:card_ticket", ttl)


def token_lock(appid: str, kind: str) -> RedisKey:
    """Held while one process refreshes a token; the TTL frees it if that process dies."""
    return RedisKey(f"{PREFIX}:{appid}:lock:token:{kind}", 15)


def push_dedup(appid: str, dedup_key: str, ttl: int) -> RedisKey:
    return RedisKey(f"{PREFIX}:{appid}:dedup:{dedup_key}", ttl)


def push_nonce(appid: str, timestamp: str, nonce: str, ttl: int) -> RedisKey:
    """Remembers which body a (timestamp, nonce) pair was first seen with, for replay defence."""
    return RedisKey(f"{PREFIX}:{appid}:nonce:{timestamp}:{nonce}", ttl)


def mp_session(appid: str, token_hash: str, ttl: int) -> RedisKey:
    """A mini-program login session, by the SHA-256 of its bearer token (a leaked key list
    does not leak usable tokens)."""
    return RedisKey(f"{PREFIX}:{appid}:mp:session:{token_hash}", ttl)


def mp_session_key(appid: str, mp_openid: str, ttl: int) -> RedisKey:
    """WeChat's session_key for a mini-program user: kept server-side only, apart from the session."""
    return RedisKey(f"{PREFIX}:{appid}:mp:session_key:{mp_openid}", ttl)


def console_login_failures(appid: str, username: str) -> RedisKey:
    """Failed console sign-ins for a username; the TTL is the lock-out window."""
    return RedisKey(f"{PREFIX}:{appid}:console:login_failures:{username.lower()}", 15 * 60)


def cashier_auth_code(appid: str, out_trade_no: str, ttl: int) -> RedisKey:
    """The scanned payment code until the submit takes it; the TTL drops it if no job does."""
    return RedisKey(f"{PREFIX}:{appid}:cashier:auth_code:{out_trade_no}", ttl)


def cashier_next_run(appid: str, out_trade_no: str, due: datetime, ttl: int) -> RedisKey:
    """Set once per (order, due time): two copies of the flow queue the next step only once."""
    return RedisKey(f"{PREFIX}:{appid}:cashier:next:{out_trade_no}:{int(due.timestamp() * 1000)}", ttl)


def desk_open(appid: str, openid: str) -> RedisKey:
    """Set while the shopper has an open customer-service conversation: the webhook's claim reads
    it in the same Lua call, so a push learns where to go without a database round trip. A cache
    of the database (the desk's sweep writes it again every minute), never the truth."""
    return RedisKey(f"{PREFIX}:{appid}:desk:open:{openid}", 7 * 24 * 3600)


def desk_events(appid: str, db: int = 0) -> str:
    """The pub/sub channel of the customer-service desk (a channel holds nothing, so no TTL):
    every console stream, in any worker, subscribes to it. Channels are server-wide, not per
    database, so the database number is in the name: two deployments of one app id on one Redis
    server (staging beside production, two test runs) do not hear each other's consoles."""
    return f"{PREFIX}:{appid}:db{db}:desk:events"


def reservation_events(appid: str, db: int = 0) -> str:
    """The pub/sub channel of reservations (bookings, holds, waiting lists changed): every counter's
    live console page, in any worker, subscribes to it. No TTL (a channel holds nothing); the
    database number is in the name for the same reason as the desk's."""
    return f"{PREFIX}:{appid}:db{db}:reservations:events"
