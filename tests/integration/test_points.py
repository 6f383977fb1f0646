"""The points rules end to end on the database: earning, refunds, redemption, staff adjustments,
yearly expiry, merges. After every scenario the ledger invariant holds."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from members import coupons, identity, ledger, points, standing
from members.exceptions import (
    InsufficientPoints,
    RefundExceedsPayment,
    SameStaffCannotApprove,
    UnknownPayment,
)
from members.models import Coupon, LevelChange, Member, PointsAdjustment, PointsEntry, SpendRecord
from tests.integration.members_helpers import assert_ledger_consistent, balance, entries, make_member, make_staff, uow
from wx_service.ground.db import utcnow

THIS_YEAR = ledger.store_year(utcnow())


def at_store(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ledger.SHANGHAI)


def pay(app, member_id: int, yuan: float, key: str, when: datetime | None = None) -> PointsEntry:
    with uow(app):
        return points.award_for_payment(member_id, round(yuan * 100), key, when or utcnow())


def refund(app, member_id: int, payment_key: str, yuan: float, key: str) -> PointsEntry:
    with uow(app):
        return points.reverse_for_refund(member_id, payment_key, round(yuan * 100), key, utcnow())


def redeem(app, member_id: int, amount: int, key: str) -> PointsEntry:
    with uow(app):
        return points.redeem_points(member_id, amount, key)


# -- earning ---------------------------------------------------------------------------------------

def test_points_are_awarded_at_the_level_held_when_paying(app):
    silver = make_member(app)
    gold = make_member(app, level="gold")
    assert pay(app, silver, 123.45, "o-1").delta == 123
    assert pay(app, gold, 100, "o-2").delta == 120
    assert assert_ledger_consistent(app, silver) == 123
    assert assert_ledger_consistent(app, gold) == 120


def test_the_same_payment_counts_once_however_often_it_is_notified(app):
    member = make_member(app)
    first = pay(app, member, 88, "o-dup")
    again = pay(app, member, 88, "o-dup")
    assert first.id == again.id
    with uow(app) as session:
        assert len(session.scalars(select(SpendRecord).where(SpendRecord.member_id == member)).all()) == 1
    assert assert_ledger_consistent(app, member) == 88


def test_spend_raises_the_level_records_the_change_and_gives_the_gift_once(app):
    member = make_member(app)
    first = pay(app, member, 5000, "o-big")  # earned at silver, then the spend makes gold
    assert first.delta == 5000
    with uow(app) as session:
        assert session.get(Member, member).level == "gold"
        changes = session.scalars(select(LevelChange).where(LevelChange.member_id == member)).all()
        assert [(c.from_level, c.to_level, c.spend_fen) for c in changes] == [("silver", "gold", 500_000)]
    assert pay(app, member, 100, "o-next").delta == 120  # now at gold's multiplier
    # The spend ages out: down to silver (recorded), then up again: no second gift for gold.
    with uow(app):
        down = standing.recompute_level(member, now=utcnow() + timedelta(days=400))
        assert (down.from_level, down.to_level) == ("gold", "silver")
    with uow(app):
        up = standing.recompute_level(member)
        assert (up.from_level, up.to_level) == ("silver", "gold")
        assert standing.recompute_level(member) is None  # no change, nothing recorded
    with uow(app) as session:
        gifts = session.scalars(select(Coupon).where(Coupon.member_id == member, Coupon.kind == "level_gift")).all()
        assert [(g.source_key, g.value_fen) for g in gifts] == [(f"level_gift:{member}:gold", 5_000)]
        assert len(session.scalars(select(LevelChange).where(LevelChange.member_id == member)).all()) == 3
    assert_ledger_consistent(app, member)


# -- refunds ---------------------------------------------------------------------------------------

def test_partial_refunds_reverse_proportionally_and_cumulatively(app):
    member = make_member(app)
    pay(app, member, 100, "o-r")  # 100 points
    deltas = [refund(app, member, "o-r", yuan, f"r-{i}").delta for i, yuan in enumerate((33.33, 33.33, 33.34))]
    # floor(100 * cumulative refunded / paid) less what was already taken: adds up to the award
    assert deltas == [-33, -33, -34] and sum(deltas) == -100
    assert assert_ledger_consistent(app, member) == 0


def test_refunds_never_exceed_the_payment_and_repeat_refunds_count_once(app):
    member = make_member(app)
    pay(app, member, 1000, "o-x")
    assert refund(app, member, "o-x", 300, "r-1").delta == -300
    assert refund(app, member, "o-x", 300, "r-1").delta == -300  # the same refund again
    assert refund(app, member, "o-x", 200, "r-2").delta == -200
    with pytest.raises(RefundExceedsPayment):
        refund(app, member, "o-x", 600, "r-3")
    assert balance(app, member) == 500
    assert refund(app, member, "o-x", 500, "r-4").delta == -500
    with pytest.raises(RefundExceedsPayment):
        refund(app, member, "o-x", 0.01, "r-5")
    assert assert_ledger_consistent(app, member) == 0


def test_a_refund_of_an_unknown_payment_is_refused(app):
    member = make_member(app)
    with pytest.raises(UnknownPayment):
        refund(app, member, "never-paid", 10, "r-unknown")
    assert entries(app, member) == []


def test_a_refund_after_the_points_were_spent_takes_the_balance_to_zero_and_says_so(app):
    member = make_member(app)
    pay(app, member, 100, "o-s")
    redeem(app, member, 80, "gift-1")
    entry = refund(app, member, "o-s", 100, "r-s")
    assert entry.delta == -20 and entry.balance_after == 0
    assert "80 points already spent" in entry.note
    assert assert_ledger_consistent(app, member) == 0


# -- redemption ------------------------------------------------------------------------------------

def test_redemption_beyond_the_balance_is_refused_and_changes_nothing(app):
    member = make_member(app)
    pay(app, member, 50, "o-small")
    with pytest.raises(InsufficientPoints):
        redeem(app, member, 51, "too-much")
    assert len(entries(app, member)) == 1
    assert redeem(app, member, 50, "all").balance_after == 0
    assert redeem(app, member, 50, "all").delta == -50  # the same redemption again: not twice
    assert assert_ledger_consistent(app, member) == 0


# -- staff adjustments -----------------------------------------------------------------------------

def test_adjustment_within_the_limit_is_applied_at_once(app):
    member = make_member(app)
    alice = make_staff(app, "alice")
    with uow(app):
        adj = points.request_adjustment(member, 1000, "goodwill", alice)
        assert adj.status == "applied" and adj.approved_by_id is None
    entry = entries(app, member)[-1]
    assert (entry.reason, entry.delta, entry.staff_id, entry.note) == ("staff_adjustment", 1000, alice, "goodwill")
    with uow(app):
        points.request_adjustment(member, -600, "correction", alice)
    with pytest.raises(InsufficientPoints):
        with uow(app):
            points.request_adjustment(member, -401, "too much", alice)
    with uow(app) as session:  # the refused request left no trace either
        assert len(session.scalars(select(PointsAdjustment)).all()) == 2
    assert assert_ledger_consistent(app, member) == 400


def test_adjustment_above_the_limit_waits_for_a_different_staff_member(app):
    member = make_member(app)
    alice, bob = make_staff(app, "alice"), make_staff(app, "bob")
    with uow(app):
        adj_id = points.request_adjustment(member, 1001, "lost receipt", alice).id
    assert balance(app, member) == 0
    with pytest.raises(SameStaffCannotApprove):
        with uow(app):
            points.approve_adjustment(adj_id, alice)
    assert balance(app, member) == 0
    with uow(app):
        assert points.approve_adjustment(adj_id, bob).status == "applied"
    with uow(app):
        assert points.approve_adjustment(adj_id, bob).status == "applied"  # again: not twice
    entry = entries(app, member)[-1]
    assert (entry.delta, entry.staff_id, entry.approved_by_id) == (1001, alice, bob)
    assert assert_ledger_consistent(app, member) == 1001


def test_a_rejected_adjustment_never_reaches_the_ledger(app):
    member = make_member(app)
    alice, bob = make_staff(app, "alice"), make_staff(app, "bob")
    with uow(app):
        adj_id = points.request_adjustment(member, 5000, "promo", alice).id
    with uow(app):
        assert points.reject_adjustment(adj_id, bob).status == "rejected"
    with uow(app) as session:
        assert points.approve_adjustment(adj_id, bob).status == "rejected"
        assert session.get(PointsAdjustment, adj_id).approved_by_id == bob
    assert entries(app, member) == []
    assert_ledger_consistent(app, member)


# -- expiry ----------------------------------------------------------------------------------------

def test_points_expire_at_the_end_of_the_next_year_oldest_first(app):
    y = THIS_YEAR - 2
    member = make_member(app)
    pay(app, member, 1000, "o-y", at_store(y, 6, 1))           # 1000 earned in Y
    pay(app, member, 500, "o-y1", at_store(y + 1, 3, 1))       # 500 earned in Y+1
    redeem(app, member, 700, "r-1")                            # uses Y's points first: 300 of Y left
    # the expiry job runs at 00:30 on 1 January Y+2, after a payment at 00:10
    pay(app, member, 200, "o-y2", at_store(y + 2, 1, 1, 0, 10))
    with uow(app):
        entry = points.expire_points(member, y)
        assert (entry.delta, entry.reason, entry.balance_after) == (-300, "expiry", 700)
    with uow(app):
        assert points.expire_points(member, y) is None  # idempotent per year: nothing more to expire
        assert ledger.append(member, -300, "expiry", f"expiry:{member}:{y}").id == entry.id
    assert balance(app, member) == 700
    # a year later Y+1's 500 go; what Y+2 earned stays
    with uow(app):
        assert points.expire_points(member, y + 1).delta == -500
    assert assert_ledger_consistent(app, member) == 200


def test_nothing_expires_when_the_old_points_were_all_spent(app):
    y = THIS_YEAR - 2
    member = make_member(app)
    pay(app, member, 100, "o-a", at_store(y, 1, 5))
    pay(app, member, 300, "o-b", at_store(y + 1, 1, 5))
    redeem(app, member, 250, "r")  # all of Y's and 150 of Y+1's
    with uow(app):
        assert points.expire_points(member, y) is None
    assert assert_ledger_consistent(app, member) == 150


# -- merge -----------------------------------------------------------------------------------------

def test_merging_keeps_the_sum_of_points_and_the_years_they_were_earned(app):
    keep = make_member(app)
    gone = make_member(app)
    pay(app, keep, 300, "k-1")
    pay(app, gone, 400, "g-old", at_store(THIS_YEAR - 1, 5, 5))
    pay(app, gone, 100, "g-new")
    redeem(app, gone, 150, "g-r")  # from last year's: 250 of them left, 100 of this year's
    with uow(app):
        survivor = identity.merge_members(keep, gone)
        assert survivor.id == keep
    with uow(app) as session:
        assert session.get(Member, gone).status == "merged"
        moved = session.scalars(select(PointsEntry).where(PointsEntry.member_id == keep,
                                                          PointsEntry.reason == "merge_in")).all()
        assert sorted((e.earned_year, e.delta) for e in moved) == [(THIS_YEAR - 1, 250), (THIS_YEAR, 100)]
        assert identity.get_member(gone).id == keep
    assert assert_ledger_consistent(app, keep) == 300 + 350
    assert assert_ledger_consistent(app, gone) == 0
    # the merged points still expire with their year
    with uow(app):
        assert points.expire_points(keep, THIS_YEAR - 1).delta == -250


def test_coupons_are_issued_once_per_source_key_and_redeemed_once(app):
    member = make_member(app)
    staff = make_staff(app, "carol")
    with uow(app):
        coupon, new = coupons.issue(member, "promotion", "Gift", 1000, 10, "promo:1")
        again, new_again = coupons.issue(member, "promotion", "Gift", 1000, 10, "promo:1")
        assert new and not new_again and again.id == coupon.id
        code = coupon.code
    with uow(app):
        assert coupons.redeem(code, staff).redeemed_by_id == staff
    from members.exceptions import CouponNotRedeemable

    with pytest.raises(CouponNotRedeemable, match="already redeemed"):
        with uow(app):
            coupons.redeem(code, staff)
    with pytest.raises(CouponNotRedeemable, match="no coupon"):
        with uow(app):
            coupons.redeem("000000000000", staff)
