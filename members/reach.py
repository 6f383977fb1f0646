"""How a message reaches a shopper: which channel carries it (a mini-program subscribe message
while a one-time consent remains, else the OA template message) and which OA openid a template
goes to. Shared by every sender (reservation notices, brand news), so the choice is made one way.

A shopper is known by the openid they used: the OA's (H5 pages, OA keywords, the console) or the
mini-program's. A template message needs the OA openid (WeChat answers 40003 to the mini-program's),
found through the member the openid belongs to (its OA identity) or, failing that, the unionid of
an OA follower. Flushes, never commits.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import select

from members import consents
from members.models import Follower, Member, MemberIdentity
from wx_service.ground.extensions import db

SUBSCRIBE, TEMPLATE = "subscribe", "template"


def oa_openids(openids: Iterable[str]) -> dict[str, str]:
    """openid -> the OA openid a template reaches it at, for each openid that has one. A handful
    of grouped queries whatever the number of openids (a chunk of brand news asks for 500)."""
    wanted = list(dict.fromkeys(o for o in openids if o))
    if not wanted:
        return {}
    found = {o: o for o in db.session.scalars(select(Follower.openid).where(Follower.openid.in_(wanted)))}
    rest = [o for o in wanted if o not in found]
    if not rest:
        return found
    member_of = dict(db.session.execute(select(MemberIdentity.openid, MemberIdentity.member_id)
                                        .where(MemberIdentity.openid.in_(rest))).all())
    if not member_of:
        return found
    members = set(member_of.values())
    oa_of: dict[int, str] = {}
    for member_id, openid in db.session.execute(select(MemberIdentity.member_id, MemberIdentity.openid).where(
            MemberIdentity.member_id.in_(members), MemberIdentity.kind == "oa").order_by(MemberIdentity.id)):
        oa_of.setdefault(member_id, openid)
    without = members - set(oa_of)
    if without:
        unionid_of = {m: u for m, u in db.session.execute(select(Member.id, Member.unionid).where(
            Member.id.in_(without))) if u}
        if unionid_of:
            follower_of = {}
            for unionid, openid in db.session.execute(select(Follower.unionid, Follower.openid).where(
                    Follower.unionid.in_(set(unionid_of.values())), Follower.subscribed.is_(True)).order_by(Follower.id)):
                follower_of.setdefault(unionid, openid)
            for member_id, unionid in unionid_of.items():
                if unionid in follower_of:
                    oa_of[member_id] = follower_of[unionid]
    for openid, member_id in member_of.items():
        if member_id in oa_of:
            found[openid] = oa_of[member_id]
    return found


def oa_openid(openid: str) -> str | None:
    """The OA openid a template reaches this shopper at (see oa_openids), or None."""
    return oa_openids([openid]).get(openid)


def following(openids: Iterable[str]) -> dict[str, bool]:
    """OA openid -> whether that follower follows now (openids we never saw follow are absent)."""
    wanted = list(dict.fromkeys(openids))
    if not wanted:
        return {}
    return dict(db.session.execute(select(Follower.openid, Follower.subscribed).where(Follower.openid.in_(wanted))).all())


def choose_channel(openid: str, *, subscribe_template_id: str, template_id: str, spent_for: str,
                   find_oa: Callable[[], str | None], now: datetime,
                   may_subscribe: bool = True) -> tuple[str, str] | None:
    """(channel, openid to send to): a subscribe message where a consent for `subscribe_template_id`
    remains (spending exactly one, on `spent_for`), else the OA template to `find_oa()`; None when
    neither can reach the shopper. `may_subscribe` False skips the consent look-up (a caller that
    already knows none remains)."""
    if subscribe_template_id and may_subscribe and consents.spend(openid, subscribe_template_id, spent_for, now=now):
        return SUBSCRIBE, openid
    oa = find_oa() if template_id else None
    return (TEMPLATE, oa) if oa else None
