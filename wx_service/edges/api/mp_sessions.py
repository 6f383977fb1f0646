"""The mini-program's login sessions: our own opaque bearer tokens, held in Redis.

WeChat's session_key is the key to the user's encrypted open data, so it is stored apart from the
session, under the mini-program openid, and never leaves the server. The bearer token is random
(secrets.token_urlsafe) and Redis knows it only by its SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from wx_service.ground import redis_keys
from wx_service.ground.extensions import redis, settings

SESSION_TTL = 7 * 24 * 3600  # the mini-program logs in again (wx.login) when it gets a 401


@dataclass(frozen=True)
class MpSession:
    token: str
    member_id: int
    openid: str  # the mini-program openid


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(member_id: int, openid: str, session_key: str) -> MpSession:
    """A new session for a member who just logged in; WeChat's session_key is kept beside it."""
    token = secrets.token_urlsafe(32)
    appid = settings().mp_appid
    key = redis_keys.mp_session(appid, _hash(token), SESSION_TTL)
    sk = redis_keys.mp_session_key(appid, openid, SESSION_TTL)
    pipe = redis().pipeline(transaction=True)
    pipe.set(key.name, json.dumps({"member_id": member_id, "openid": openid}), ex=key.ttl)
    pipe.set(sk.name, session_key, ex=sk.ttl)
    pipe.execute()
    return MpSession(token=token, member_id=member_id, openid=openid)


def lookup(token: str) -> MpSession | None:
    """The live session for a bearer token, or None (unknown, expired or malformed)."""
    if not token or len(token) > 256:
        return None
    raw = redis().get(redis_keys.mp_session(settings().mp_appid, _hash(token), SESSION_TTL).name)
    if raw is None:
        return None
    data = json.loads(raw)
    return MpSession(token=token, member_id=int(data["member_id"]), openid=str(data["openid"]))


def session_key(openid: str) -> str | None:
    """WeChat's session_key for this mini-program user (to decrypt open data); server-side only."""
    raw = redis().get(redis_keys.mp_session_key(settings().mp_appid, openid, SESSION_TTL).name)
    return raw.decode() if isinstance(raw, bytes) else raw
