"""The points ledger: append-only, idempotent by source key, never below zero.

Every change to a balance goes through `append`, which locks the member's row, so concurrent
awards and redemptions for one member are applied one after another and the cached balance
always equals the last entry's balance_after. A source key already in the ledger returns the
entry it made instead of adding another: a payment notification or job that runs twice counts
once.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from members.exceptions import InsufficientPoints, SourceKeyConflict, UnknownMember
from members.models import Member, PointsEntry
from wx_service.ground.extensions import db, enqueue_after_commit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def store_year(at: datetime) -> int:
    """The calendar year in the store's time zone (points expire by store years)."""
    return at.astimezone(SHANGHAI).year


def lock_member(member_id: int) -> Member:
    """The member's row, locked for this transaction (SELECT ... FOR UPDATE on Postgres)."""
    member = db.session.scalar(
        select(Member).where(Member.id == member_id).with_for_update().execution_options(populate_existing=True))
    if member is None:
        raise UnknownMember(f"no member {member_id}")
    return member


def find_entry(source_key: str) -> PointsEntry | None:
    return db.session.scalar(select(PointsEntry).where(PointsEntry.source_key == source_key))


def _new_entry(member: Member, delta: int, reason: str, source_key: str, *, ref_key: str,
               earned_year: int | None, staff_id: int | None, approved_by_id: int | None,
               note: str) -> PointsEntry:
    balance = member.points_balance + delta
    if balance < 0:
        raise InsufficientPoints(f"balance {member.points_balance}, change {delta}")
    return PointsEntry(member_id=member.id, delta=delta, balance_after=balance, reason=reason,
                       source_key=source_key, ref_key=ref_key, earned_year=earned_year, staff_id=staff_id,
                       approved_by_id=approved_by_id, note=note[:256])


def append(member_id: int, delta: int, reason: str, source_key: str, *, ref_key: str = "",
           earned_year: int | None = None, staff_id: int | None = None, approved_by_id: int | None = None,
           note: str = "") -> PointsEntry:
    """Add one entry (or return the one this source key already made)."""
    member = lock_member(member_id)
    existing = find_entry(source_key)
    if existing is not None:
        if existing.member_id != member_id or existing.reason != reason:
            raise SourceKeyConflict(f"{source_key} already used for another entry")
        return existing
    entry = _new_entry(member, delta, reason, source_key, ref_key=ref_key, earned_year=earned_year,
                       staff_id=staff_id, approved_by_id=approved_by_id, note=note)
    try:
        with db.session.begin_nested():
            db.session.add(entry)
            db.session.flush()
    except IntegrityError:
        # The same key from another member's transaction won the race: report, do not double.
        existing = find_entry(source_key)
        if existing is None:
            raise
        raise SourceKeyConflict(f"{source_key} already used for another entry") from None
    member.points_balance = entry.balance_after
    db.session.flush()
    if delta:
        enqueue_after_commit("members.jobs.sync_card", member_id=member_id)
    return entry


def add_entry(member: Member, delta: int, reason: str, source_key: str, *, ref_key: str = "",
              earned_year: int | None = None, note: str = "") -> PointsEntry:
    """`append` for a caller that already holds `member`'s row lock (lock_member in this
    transaction) and has looked `source_key` up under it: no second lock, lookup, savepoint or
    flush. The entry and the balance are written by the caller's next flush, together with the
    rest of its unit of work (the hot path of a payment notification).

    Only for callers that insert a row with its own unique key in the same flush (the spend
    record of a payment or refund): a key taken meanwhile by another member's transaction makes
    that flush fail as a whole, which is what `append`'s savepoint would otherwise report."""
    entry = _new_entry(member, delta, reason, source_key, ref_key=ref_key, earned_year=earned_year,
                       staff_id=None, approved_by_id=None, note=note)
    db.session.add(entry)
    member.points_balance = entry.balance_after
    if delta:
        enqueue_after_commit("members.jobs.sync_card", member_id=member.id)
    return entry


def ledger_sum(member_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                                 .where(PointsEntry.member_id == member_id)))


def net_earned_in(member_id: int, year: int) -> int:
    """Points earned in `year` (earnings less their reversals): what is still owed to that year."""
    return int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
        PointsEntry.member_id == member_id, PointsEntry.earned_year == year)))


def history(member_id: int, page: int, per_page: int) -> tuple[list[PointsEntry], int]:
    total = int(db.session.scalar(select(func.count()).select_from(PointsEntry)
                                  .where(PointsEntry.member_id == member_id)))
    entries = list(db.session.scalars(
        select(PointsEntry).where(PointsEntry.member_id == member_id)
        .order_by(PointsEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)))
    return entries, total
