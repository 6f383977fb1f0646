"""Points and levels: earning from payments, reversing for refunds, redeeming, staff adjustments,
yearly expiry, and the level that 12 months of spend gives. The API other packages call
(`award_for_payment`, `reverse_for_refund`) is idempotent by its source key."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from members import audit, ledger
from members.exceptions import (
    ApprovalRequired,
    RefundExceedsPayment,
    SameStaffCannotApprove,
    UnknownMember,
    UnknownPayment,
)
from members.identity import get_member
from members.levels import SPEND_WINDOW, Level, Progress, points_for_payment, progress
from members.models import Member, MemberCard, PointsAdjustment, PointsEntry, SpendRecord
from members.program import load_program
from members.standing import recompute_level, spend_in_window, twelve_month_spend
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db


def _spend_key(source_key: str) -> str:
    return f"spend:{source_key}"


def award_for_payment(member_id: int, amount_fen: int, source_key: str, occurred_at: datetime) -> PointsEntry:
    """Points for a payment, at the level held when paying; the spend counts toward the level.
    Called once per paid order; a repeat with the same source key returns the first entry."""
    if amount_fen <= 0:
        raise ValueError("a payment amount is positive")
    if occurred_at.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use utcnow()")
    member = ledger.lock_member(get_member(member_id).id)
    key = f"payment:{source_key}"
    now = utcnow()
    # One statement, read under the member's lock (so current, and nobody else adds spend for this
    # member until commit): is this payment awarded already, and the 12-month spend before it.
    existing_id, spend_before = db.session.execute(select(
        select(PointsEntry.id).where(PointsEntry.source_key == key).scalar_subquery(),
        spend_in_window(member.id, now).scalar_subquery())).one()
    if existing_id is not None:
        return db.session.get(PointsEntry, existing_id)
    program = load_program()
    level = program.level(member.level)
    points = points_for_payment(amount_fen, program.points_per_yuan, level)
    db.session.add(SpendRecord(member_id=member.id, amount_fen=amount_fen, occurred_at=occurred_at,
                               source_key=_spend_key(key), ref_key=source_key))
    entry = ledger.add_entry(member, points, "payment", key, ref_key=source_key,
                             earned_year=ledger.store_year(occurred_at),
                             note=f"{amount_fen / 100:.2f} yuan at {level.code}")
    # The spend the database would sum once this record is in: the same window, the same `now`.
    in_window = now - SPEND_WINDOW < occurred_at <= now
    recompute_level(member.id, now, spend_fen=int(spend_before) + (amount_fen if in_window else 0))
    db.session.flush()  # one flush: spend record, entry, balance (and the caller's pending changes)
    return entry


def reverse_for_refund(member_id: int, payment_source_key: str, refund_fen: int, source_key: str,
                       occurred_at: datetime) -> PointsEntry:
    """Take back points in proportion to what was refunded, once per refund. Partial refunds add
    up to at most the payment. If the member already spent the points, the balance goes to zero
    and the note records what could not be taken back."""
    if refund_fen <= 0:
        raise ValueError("a refund amount is positive")
    member = ledger.lock_member(get_member(member_id).id)
    existing = ledger.find_entry(f"refund:{source_key}")
    if existing is not None:
        return existing
    award = ledger.find_entry(f"payment:{payment_source_key}")
    paid = db.session.scalar(select(SpendRecord.amount_fen).where(
        SpendRecord.source_key == _spend_key(f"payment:{payment_source_key}")))
    if award is None or paid is None:
        raise UnknownPayment(f"no points were awarded for payment {payment_source_key}")
    refunded_before = -int(db.session.scalar(select(func.coalesce(func.sum(SpendRecord.amount_fen), 0)).where(
        SpendRecord.ref_key == payment_source_key, SpendRecord.amount_fen < 0)))
    if refunded_before + refund_fen > paid:
        raise RefundExceedsPayment(f"refunds would total {refunded_before + refund_fen} of {paid} fen paid")
    reversed_before = -int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
        PointsEntry.ref_key == payment_source_key, PointsEntry.reason == "refund")))
    due = award.delta * (refunded_before + refund_fen) // paid - reversed_before
    taken = min(due, member.points_balance)
    note = f"{refund_fen / 100:.2f} yuan refunded"
    if taken < due:
        note += f"; {due - taken} points already spent, not taken back"
    db.session.add(SpendRecord(member_id=member.id, amount_fen=-refund_fen, occurred_at=occurred_at,
                               source_key=_spend_key(f"refund:{source_key}"), ref_key=payment_source_key))
    entry = ledger.add_entry(member, -taken, "refund", f"refund:{source_key}", ref_key=payment_source_key,
                             earned_year=award.earned_year, note=note)
    recompute_level(member.id)
    return entry


def redeem_points(member_id: int, points: int, source_key: str, note: str = "") -> PointsEntry:
    """Spend points (never below zero, even with concurrent redemptions: the row lock orders them)."""
    if points <= 0:
        raise ValueError("redeem a positive number of points")
    return ledger.append(get_member(member_id).id, -points, "redemption", f"redeem:{source_key}", note=note)


def request_adjustment(member_id: int, delta: int, reason: str, staff_id: int) -> PointsAdjustment:
    """A staff adjustment with a reason. Within the limit it is applied at once; above it, it
    waits for another staff member's approval."""
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    if delta == 0:
        raise ValueError("an adjustment changes the balance")
    member = get_member(member_id)
    adjustment = PointsAdjustment(member_id=member.id, delta=delta, reason=reason.strip(), requested_by_id=staff_id)
    db.session.add(adjustment)
    db.session.flush()
    if abs(delta) <= load_program().adjustment_needs_approval_above:
        _apply(adjustment, approved_by_id=None)  # locks and re-reads the member: its balance is current
    # Pending: the balance is not touched (yet), so before and after are the same.
    before = member.points_balance - (delta if adjustment.status == "applied" else 0)
    audit.record(staff_id, "points.adjust", f"member:{member.id}", before={"points_balance": before},
                 after={"points_balance": member.points_balance, "adjustment": adjustment.id, "delta": delta,
                        "status": adjustment.status}, detail=adjustment.reason)
    return adjustment


def _locked_adjustment(adjustment_id: int) -> PointsAdjustment:
    adjustment = db.session.get(PointsAdjustment, adjustment_id, with_for_update=True)
    if adjustment is None:
        raise UnknownMember(f"no adjustment {adjustment_id}")
    return adjustment


def approve_adjustment(adjustment_id: int, approver_id: int) -> PointsAdjustment:
    adjustment = _locked_adjustment(adjustment_id)
    if adjustment.status != "pending":
        return adjustment
    if approver_id == adjustment.requested_by_id:
        raise SameStaffCannotApprove("a second staff member must approve this adjustment")
    _apply(adjustment, approved_by_id=approver_id)
    member = get_member(adjustment.member_id)  # locked and re-read by _apply: its balance is current
    audit.record(approver_id, "points.approve", f"adjustment:{adjustment.id}",
                 before={"status": "pending", "points_balance": member.points_balance - adjustment.delta},
                 after={"status": adjustment.status, "points_balance": member.points_balance,
                        "member": member.id, "delta": adjustment.delta}, detail=adjustment.reason)
    return adjustment


def reject_adjustment(adjustment_id: int, staff_id: int) -> PointsAdjustment:
    adjustment = _locked_adjustment(adjustment_id)
    if adjustment.status == "pending":
        adjustment.status, adjustment.approved_by_id, adjustment.decided_at = "rejected", staff_id, utcnow()
        db.session.flush()
        audit.record(staff_id, "points.reject", f"adjustment:{adjustment.id}", before={"status": "pending"},
                     after={"status": "rejected", "member": adjustment.member_id, "delta": adjustment.delta},
                     detail=adjustment.reason)
    return adjustment


def _apply(adjustment: PointsAdjustment, approved_by_id: int | None) -> None:
    if approved_by_id is None and abs(adjustment.delta) > load_program().adjustment_needs_approval_above:
        raise ApprovalRequired("above the limit: a second staff member must approve")
    ledger.append(adjustment.member_id, adjustment.delta, "staff_adjustment", f"adjustment:{adjustment.id}",
                  earned_year=ledger.store_year(utcnow()) if adjustment.delta > 0 else None,
                  staff_id=adjustment.requested_by_id, approved_by_id=approved_by_id, note=adjustment.reason)
    adjustment.status, adjustment.approved_by_id, adjustment.decided_at = "applied", approved_by_id, utcnow()
    db.session.flush()


def expire_points(member_id: int, earned_year: int) -> PointsEntry | None:
    """Points earned in `earned_year` expire at the end of the next year. Redemptions use the
    oldest points first, so what expires is the balance beyond what the next year earned."""
    member = ledger.lock_member(member_id)
    if member.status != "active":
        return None
    # Everything earned after `earned_year` is kept (not only the next year: the job may run on
    # 1 January after the first payments of the new year).
    keep = max(0, int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
        PointsEntry.member_id == member.id, PointsEntry.earned_year > earned_year))))
    expiring = max(0, member.points_balance - keep)
    if expiring == 0:
        return None
    return ledger.append(member.id, -expiring, "expiry", f"expiry:{member.id}:{earned_year}",
                         note=f"points earned in {earned_year} expired")


@dataclass(frozen=True)
class Summary:
    member: Member
    level: Level
    progress: Progress
    card_code: str | None


def membership_summary(member_id: int, now: datetime | None = None) -> Summary:
    """What "my membership" shows: card, level, points, what the level gives, the next level."""
    program = load_program()
    member = get_member(member_id)
    card = db.session.scalar(select(MemberCard).where(MemberCard.member_id == member.id,
                                                      MemberCard.status != "deleted").order_by(MemberCard.id.desc()))
    spend = twelve_month_spend(member.id, now)
    return Summary(member=member, level=program.level(member.level), progress=progress(program.levels, spend),
                   card_code=card.code if card else None)


