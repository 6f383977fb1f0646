"""One shopper, one member: finding members by openid, unionid or phone, and merging duplicates."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from members import ledger
from members.exceptions import PhoneBoundToAnotherMember, UnknownMember
from members.models import Coupon, LevelChange, Member, MemberCard, MemberIdentity, PointsAdjustment, SpendRecord
from members.program import load_program
from members.standing import recompute_level
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

OA = "oa"
MP = "mp"


def _follow(member: Member | None) -> Member | None:
    """The surviving member for a merged one."""
    seen = 0
    while member is not None and member.status == "merged" and member.merged_into_id and seen < 10:
        member = db.session.get(Member, member.merged_into_id)
        seen += 1
    return member


def get_member(member_id: int) -> Member:
    member = _follow(db.session.get(Member, member_id))
    if member is None:
        raise UnknownMember(f"no member {member_id}")
    return member


def member_for_openid(kind: str, openid: str) -> Member | None:
    """The (surviving) member an openid belongs to. One statement: the member through its identity
    (every payment notification asks this)."""
    member = db.session.scalar(select(Member).join(MemberIdentity, MemberIdentity.member_id == Member.id)
                               .where(MemberIdentity.kind == kind, MemberIdentity.openid == openid))
    return _follow(member)


def member_for_unionid(unionid: str) -> Member | None:
    return _follow(db.session.scalar(select(Member).where(Member.unionid == unionid)))


def member_for_phone(phone: str) -> Member | None:
    return _follow(db.session.scalar(select(Member).where(Member.phone == phone)))


def resolve_member(kind: str, openid: str, unionid: str | None = None) -> Member:
    """The member behind an openid, creating one on first sight. A unionid links the OA and the
    mini-program: a second record that turns out to share it is merged into the older one."""
    member = member_for_openid(kind, openid)
    if member is None and unionid:
        member = member_for_unionid(unionid)
    if member is None:
        member = Member(unionid=unionid or None, level=load_program().levels[0].code, joined_at=utcnow())
        db.session.add(member)
        db.session.flush()
    if member_for_openid(kind, openid) is None:
        db.session.add(MemberIdentity(member_id=member.id, kind=kind, openid=openid))
        db.session.flush()
    if unionid and member.unionid != unionid:
        other = member_for_unionid(unionid)
        if other is not None and other.id != member.id:
            member = merge_members(*sorted((member.id, other.id)))
        elif member.unionid is None:
            member.unionid = unionid
            db.session.flush()
    return member


def bind_phone(member_id: int, phone: str) -> Member:
    """Bind a phone WeChat verified. If another member has it and is not provably someone else
    (a different unionid), they are the same person: the two are merged into the older one."""
    member = get_member(member_id)
    if member.phone == phone:
        return member
    other = member_for_phone(phone)
    if other is not None and other.id != member.id:
        if member.unionid and other.unionid and member.unionid != other.unionid:
            raise PhoneBoundToAnotherMember("this phone number is bound to another WeChat user's membership")
        survivor = merge_members(*sorted((member.id, other.id)))
        survivor.phone = phone
        db.session.flush()
        return survivor
    member.phone = phone
    db.session.flush()
    return member


def set_profile(member_id: int, name: str | None = None, birthday: date | None = None) -> Member:
    member = get_member(member_id)
    if name:
        member.name = name[:64]
    if birthday:
        member.birthday = birthday
    db.session.flush()
    return member


def merge_members(keep_id: int, gone_id: int) -> Member:
    """Merge `gone` into `keep`: identities, cards, spend, coupons and points move; nothing is lost.

    Points move through the ledger (merge_out on one side, merge_in on the other), split by the
    year they were earned so that they still expire when they would have."""
    if keep_id == gone_id:
        return get_member(keep_id)
    first, second = sorted((keep_id, gone_id))
    locked = {first: ledger.lock_member(first), second: ledger.lock_member(second)}  # fixed order: no deadlock
    keep, gone = locked[keep_id], locked[gone_id]
    if gone.status == "merged":
        return get_member(keep_id)
    for model in (MemberIdentity, MemberCard, SpendRecord, Coupon, PointsAdjustment):
        db.session.execute(update(model).where(model.member_id == gone.id).values(member_id=keep.id)
                           .execution_options(synchronize_session=False))
    moving = gone.points_balance
    if moving:
        year = ledger.store_year(utcnow())
        ledger.append(gone.id, -moving, "merge_out", f"merge-out:{gone.id}", note=f"merged into member {keep.id}")
        remaining = moving
        for earned_year in (year, year - 1):
            part = min(remaining, max(0, ledger.net_earned_in(gone.id, earned_year)))
            if earned_year == year - 1:
                part = remaining  # older points, whatever their year, expire with last year's
            if part:
                ledger.append(keep.id, part, "merge_in", f"merge-in:{gone.id}:{earned_year}",
                              earned_year=earned_year, note=f"from member {gone.id}")
                remaining -= part
    unionid, phone = gone.unionid, gone.phone
    gone.unionid, gone.phone = None, None
    gone.status, gone.merged_into_id = "merged", keep.id
    db.session.flush()
    keep.unionid = keep.unionid or unionid
    keep.phone = keep.phone or phone
    keep.name = keep.name or gone.name
    keep.birthday = keep.birthday or gone.birthday
    keep.joined_at = min(keep.joined_at, gone.joined_at)
    db.session.flush()
    recompute_level(keep.id)
    return keep


def level_history(member_id: int) -> list[LevelChange]:
    return list(db.session.scalars(select(LevelChange).where(LevelChange.member_id == member_id)
                                   .order_by(LevelChange.id)))
