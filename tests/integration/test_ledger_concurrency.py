"""Concurrency proof on real Postgres: many transactions at once against ONE member.

200 operations from 20 threads, each in its own app context and unit of work (as 20 workers or
web processes would be): awards and redemptions, with duplicates of the same source keys. The
member's row lock orders them, so afterwards the cached balance equals the sum of the ledger and
the last balance_after, no running balance is negative, every source key counted once, and the
redemptions that would have gone below zero were refused. Also: ten cashiers redeeming the same
coupon code at once, exactly one succeeds.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from members import coupons, points
from members.exceptions import CouponNotRedeemable, InsufficientPoints
from members.models import PointsEntry, SpendRecord
from tests.conftest import requires_postgres
from tests.integration.members_helpers import assert_ledger_consistent, make_member, make_staff, uow
from wx_service.ground.db import utcnow

pytestmark = requires_postgres

THREADS = 20
AWARD_FEN = 1_000  # 10 yuan: 10 points at silver


def _run_all(app, ops: list[tuple], worker) -> list[tuple]:
    barrier = threading.Barrier(THREADS)
    chunks = [ops[i::THREADS] for i in range(THREADS)]

    def thread_main(chunk: list[tuple]) -> list[tuple]:
        barrier.wait()
        return [worker(op) for op in chunk]

    with ThreadPoolExecutor(THREADS) as pool:
        return [result for chunk in pool.map(thread_main, chunks) for result in chunk]


def test_200_concurrent_awards_and_redemptions_on_one_member_keep_the_ledger_exact(app):
    rng = random.Random(7)
    member = make_member(app)
    with uow(app):
        points.award_for_payment(member, 200_000, "seed", utcnow())  # 2000 points to start
    award_keys = [f"pay-{i}" for i in range(60)]
    redeem_keys = {f"use-{i}": rng.randint(30, 80) for i in range(80)}
    ops = [("award", key) for key in award_keys] + [("award", rng.choice(award_keys)) for _ in range(40)]
    ops += [("redeem", key) for key in redeem_keys] + [("redeem", rng.choice(list(redeem_keys))) for _ in range(20)]
    rng.shuffle(ops)
    assert len(ops) == 200

    def worker(op: tuple) -> tuple:
        kind, key = op
        with app.app_context():
            try:
                with app.extensions["wx"].db.unit_of_work():
                    if kind == "award":
                        entry = points.award_for_payment(member, AWARD_FEN, key, utcnow())
                    else:
                        entry = points.redeem_points(member, redeem_keys[key], key)
                    return kind, key, "ok", entry.id
            except InsufficientPoints:
                return kind, key, "refused", None

    results = _run_all(app, ops, worker)
    outcomes = Counter((kind, outcome) for kind, _, outcome, _ in results)
    assert outcomes[("award", "refused")] == 0
    refused = outcomes[("redeem", "refused")]
    redeemed_keys = {key for kind, key, outcome, _ in results if kind == "redeem" and outcome == "ok"}
    refused_keys = {key for kind, key, outcome, _ in results if kind == "redeem" and outcome == "refused"}
    assert refused > 0 and redeemed_keys, outcomes  # the mix really hit the floor

    final = assert_ledger_consistent(app, member)
    with uow(app) as session:
        rows = session.scalars(select(PointsEntry).where(PointsEntry.member_id == member)).all()
        keys = Counter(row.source_key for row in rows)
        assert max(keys.values()) == 1
        assert {k for k in keys if k.startswith("payment:pay-")} == {f"payment:{k}" for k in award_keys}
        assert {k[len("redeem:"):] for k in keys if k.startswith("redeem:")} == redeemed_keys
        spend = session.scalar(select(func.count()).select_from(SpendRecord).where(SpendRecord.member_id == member))
        assert spend == 1 + len(award_keys)
        # A duplicate of a successful key returned the same entry: one id per key.
        for key in redeemed_keys:
            ids = {entry_id for kind, k, outcome, entry_id in results if k == key and outcome == "ok"}
            assert len(ids) == 1
        # The final figures add up exactly: the seed, each award once, each applied redemption once.
        assert final == 2000 + 10 * len(award_keys) - sum(redeem_keys[k] for k in redeemed_keys)
        # A key that was refused and never applied left nothing behind.
        assert not {f"redeem:{k}" for k in refused_keys - redeemed_keys} & set(keys)
        # Refusals happened at the floor: some refused amount exceeds the lowest balance reached.
        lowest = min(row.balance_after for row in rows)
        assert any(redeem_keys[k] > lowest for k in refused_keys)
    print(f"\n200 ops: {outcomes}, distinct redemptions applied {len(redeemed_keys)}, refused calls {refused}, "
          f"final balance {final}")


def test_ten_cashiers_redeeming_one_coupon_at_once_only_one_succeeds(app):
    member = make_member(app)
    staff = [make_staff(app, f"cashier{i}") for i in range(10)]
    with uow(app):
        code = coupons.issue(member, "promotion", "Gift", 5_000, 30, "promo:race")[0].code
    barrier = threading.Barrier(10)

    def cashier(staff_id: int) -> str:
        barrier.wait()
        with app.app_context():
            try:
                with app.extensions["wx"].db.unit_of_work():
                    coupons.redeem(code, staff_id)
                return "ok"
            except CouponNotRedeemable as exc:
                return str(exc)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(cashier, staff))
    assert results.count("ok") == 1
    assert results.count("this coupon was already redeemed") == 9
    with uow(app):
        coupon = coupons.find_by_source("promo:race")
        assert coupon.redeemed_by_id == staff[results.index("ok")]
