"""Follower verbs called by the WeChat handlers. Services flush; the edge commits."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update

from members.models import Follower, FollowerScan
from wx_service.ground.extensions import db, enqueue_after_commit


def _at(unix_seconds: int) -> datetime:
    return datetime.fromtimestamp(unix_seconds, timezone.utc)


def _find(openid: str) -> Follower | None:
    return db.session.scalar(select(Follower).where(Follower.openid == openid))


def record_follow(openid: str, at_unix: int, scene: str = "") -> Follower:
    """A follow (first or again). The first follow's scene is kept for attribution; every
    QR follow is also logged as a scan. The profile (unionid) is fetched by a job."""
    at = _at(at_unix)
    follower = _find(openid)
    if follower is None:
        follower = Follower(openid=openid, first_subscribed_at=at, first_scene=scene)
        db.session.add(follower)
    follower.subscribed = True
    follower.subscribed_at = at
    follower.unsubscribed_at = None
    if scene:
        db.session.add(FollowerScan(follower=follower, scene=scene, subscribed_by_scan=True, scanned_at=at))
    db.session.flush()
    if follower.profile_fetched_at is None:
        enqueue_after_commit("members.jobs.fetch_follower_profile", openid=openid)
    return follower


def record_unfollow(openid: str, at_unix: int) -> Follower | None:
    """Mark the follower as gone; their history stays."""
    follower = _find(openid)
    if follower is None:
        return None
    follower.subscribed = False
    follower.unsubscribed_at = _at(at_unix)
    db.session.flush()
    return follower


def record_scan(openid: str, at_unix: int, scene: str) -> Follower:
    """An existing follower scanned a parametric QR code."""
    follower = _find(openid)
    if follower is None:
        # A follower from before this service ran: record them as following now.
        return record_follow(openid, at_unix, scene)
    db.session.add(FollowerScan(follower=follower, scene=scene, subscribed_by_scan=False, scanned_at=_at(at_unix)))
    db.session.flush()
    return follower


# A shopper's phone may report its location on entering the chat and then every 5 seconds; the
# nearest store is worth saying once per visit to the chat, not every 5 seconds.
LOCATION_ANSWER_EVERY = timedelta(minutes=30)


def claim_location_answer(openid: str, at_unix: int) -> bool:
    """Whether a LOCATION report should be answered: True for the first in LOCATION_ANSWER_EVERY,
    which it records (one conditional UPDATE); False for the reports after it. A shopper unknown
    as a follower (from before this service ran) is answered, and nothing is recorded."""
    at = _at(at_unix)
    claimed = db.session.execute(update(Follower).where(
        Follower.openid == openid,
        or_(Follower.location_answered_at.is_(None), Follower.location_answered_at <= at - LOCATION_ANSWER_EVERY),
    ).values(location_answered_at=at)).rowcount
    return bool(claimed) or _find(openid) is None


def save_profile(openid: str, unionid: str | None, nickname: str, fetched_at: datetime) -> Follower | None:
    follower = _find(openid)
    if follower is None:
        return None
    follower.unionid = unionid or follower.unionid
    follower.nickname = nickname or follower.nickname
    follower.profile_fetched_at = fetched_at
    db.session.flush()
    return follower


def get_follower(openid: str) -> Follower | None:
    return _find(openid)
