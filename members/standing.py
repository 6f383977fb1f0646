"""A member's standing: 12 months of spend, and the level it gives.

Lower than both `identity` (whose merges recompute the survivor's level) and `points` (whose
awards and refunds move the spend): it takes a surviving member's id, and callers resolve merges
through `members.identity.get_member` first.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from members import coupons
from members.exceptions import UnknownMember
from members.levels import SPEND_WINDOW, level_for_spend
from members.models import LevelChange, Member, SpendRecord
from members.program import load_program
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit


def spend_in_window(member_id: int, now: datetime):
    """The 12-month spend up to `now`, as a scalar query (callers embed it in their own statement)."""
    return select(func.coalesce(func.sum(SpendRecord.amount_fen), 0)).where(
        SpendRecord.member_id == member_id, SpendRecord.occurred_at > now - SPEND_WINDOW,
        SpendRecord.occurred_at <= now)


def twelve_month_spend(member_id: int, now: datetime | None = None) -> int:
    """Net spend in the 12 months up to `now` (the window members.levels defines), summed by the
    database over the (member_id, occurred_at) index: an award's cost does not grow with history."""
    total = db.session.scalar(spend_in_window(member_id, now or utcnow()))
    return max(0, int(total))


def recompute_level(member_id: int, now: datetime | None = None, *,
                    spend_fen: int | None = None) -> LevelChange | None:
    """Set the level the rules give; record a change and tell the card (after commit).
    `spend_fen`: the 12-month spend up to `now`, when the caller read it under the member's lock."""
    program = load_program()
    member = db.session.get(Member, member_id)
    if member is None:
        raise UnknownMember(f"no member {member_id}")
    if member.status == "merged":
        raise UnknownMember(f"member {member_id} was merged into {member.merged_into_id}")
    spend = twelve_month_spend(member.id, now) if spend_fen is None else max(0, spend_fen)
    new = level_for_spend(program.levels, spend)
    if member.level == new.code:
        return None
    old = member.level or program.levels[0].code
    member.level = new.code
    change = LevelChange(member_id=member.id, from_level=old, to_level=new.code, spend_fen=spend,
                         changed_at=now or utcnow())
    db.session.add(change)
    db.session.flush()
    codes = [lv.code for lv in program.levels]
    if old in codes and codes.index(new.code) > codes.index(old):
        gift = program.level_gift
        value = gift.value_fen_for(new.code)
        if value:
            coupons.issue(member.id, "level_gift", gift.title, value, gift.valid_days,
                          f"level_gift:{member.id}:{new.code}")
    enqueue_after_commit("members.jobs.sync_card", member_id=member.id)
    return change
