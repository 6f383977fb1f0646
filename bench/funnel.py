"""The funnel report on Postgres over 1,000,000 touches (100,000 of them payments), beside a plain
COUNT(*) over the same table in the same run.

    .venv/bin/python bench/funnel.py [--rounds 3] [--touches 1000000] [--payments 100000]
                                     [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

It creates (and drops afterwards) its own database, wx_funnel_bench, migrates it and loads with
COPY (fixed seed): 200,000 shoppers (openids), 60,000 of them members with an OA identity; 30
campaigns and 40 brands; 90 days of touches: scans, follows, page views, card claims, bookings
and check-ins, coupons, payments (a third at a brand's counter, some from a campaign) and 2% of
the payments refunded. Pre-member touches carry only the openid (the report resolves them).

Timed, each the median of --rounds after a warm-up:

  count(*)       SELECT COUNT(*) FROM touches: the table read once, nothing else (the baseline);
  R days/view/by funnel.report for the last R store days (28 and 90), each view (last, first)
               and grouping (campaign, brand), in its own unit of work as the console's request.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from bench.threaded import drop_database, recreate_database  # noqa: E402

DB_NAME = "wx_funnel_bench"
SHOPPERS, MEMBERS, CAMPAIGNS, BRANDS, DAYS = 200_000, 60_000, 30, 40, 90
END = datetime(2026, 11, 30, 16, tzinfo=timezone.utc)  # 2026-12-01 00:00 in Shanghai


def generate(touches: int, payments: int, seed: int = 12):
    """(kind, key, openid, member_id, campaign, brand_id, amount_fen, counter, ref, occurred_at) rows."""
    rng = random.Random(seed)
    counters = [f"C{n:03d}" for n in range(1, BRANDS + 1)]
    campaigns = [f"camp-{n:02d}" for n in range(1, CAMPAIGNS + 1)]
    span = DAYS * 86_400
    others = touches - payments - payments // 50
    mix = [("scan", 0.40), ("follow", 0.20), ("page_view", 0.17), ("member", 0.05), ("reservation", 0.06),
           ("check_in", 0.05), ("coupon_redeem", 0.04), ("brand_subscribe", 0.03)]
    kinds = rng.choices([k for k, _ in mix], weights=[w for _, w in mix], k=others)
    n = 0
    for kind in kinds:
        n += 1
        shopper = rng.randrange(SHOPPERS)
        member = shopper + 1 if shopper < MEMBERS and kind in ("member", "reservation", "check_in", "coupon_redeem") else None
        at = END - timedelta(seconds=rng.randrange(span))
        campaign = rng.choice(campaigns) if kind in ("scan", "follow", "page_view") else ""
        brand = rng.randrange(1, BRANDS + 1) if kind in ("check_in", "brand_subscribe", "reservation") else None
        counter = counters[brand - 1] if kind == "check_in" and brand else ""
        yield (kind, f"{kind}:{n}", f"oB{shopper:07d}", member, campaign, brand, 0, counter, "", at)
    for p in range(payments):
        shopper = rng.randrange(SHOPPERS)
        at = END - timedelta(seconds=rng.randrange(span))
        at_counter = rng.random() < 0.34
        brand = rng.randrange(1, BRANDS + 1) if at_counter else None
        campaign = rng.choice(campaigns) if rng.random() < 0.1 else ""
        fen = rng.randrange(1_000, 500_000)
        key = f"T{p:09d}"
        yield ("payment", key, f"oB{shopper:07d}", shopper + 1 if shopper < MEMBERS else None, campaign, brand, fen,
               counters[brand - 1] if brand else "mp", "", at)
        if p % 50 == 0:
            yield ("refund", f"R{p:09d}", f"oB{shopper:07d}", shopper + 1 if shopper < MEMBERS else None, "", None,
                   fen // 2, "", key, at + timedelta(days=1))


def load(engine: sa.Engine, touches: int, payments: int) -> int:
    """Members, identities, brands and the touches, by COPY; the touches' count."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        with cur.copy("COPY members (id, level, points_balance, status, joined_at, created_at, name) FROM STDIN") as copy:
            for m in range(1, MEMBERS + 1):
                copy.write_row((m, "silver", 0, "active", now, now, ""))
        with cur.copy("COPY member_identities (member_id, kind, openid, created_at) FROM STDIN") as copy:
            for m in range(1, MEMBERS + 1):
                copy.write_row((m, "oa", f"oB{m - 1:07d}", now))
        with cur.copy("COPY brands (id, name, name_en, floor, counter_code, categories, description, active, "
                      "created_at, updated_at) FROM STDIN") as copy:
            for b in range(1, BRANDS + 1):
                copy.write_row((b, f"品牌{b:02d}", f"Brand {b:02d}", "L1", f"C{b:03d}", "[]", "", True, now, now))
        count = 0
        with cur.copy("COPY touches (kind, key, openid, member_id, campaign, brand_id, amount_fen, counter, ref, "
                      "occurred_at) FROM STDIN") as copy:
            for row in generate(touches, payments):
                copy.write_row(row)
                count += 1
        raw.commit()
        cur.execute("SELECT setval('members_id_seq', %s)", (MEMBERS,))
        cur.execute("ANALYZE")
        raw.commit()
        return count
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--touches", type=int, default=1_000_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="leave the database for EXPLAIN")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    url = recreate_database(args.pg, DB_NAME)
    app = None
    try:
        from config import load_settings
        from marketing import funnel
        from wx_service.app import create_app
        from wx_service.ground.db import upgrade_database

        upgrade_database(url)
        app = create_app(load_settings({"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": "memory://",
                                        "LOG_LEVEL": "WARNING"}, WECHAT_EMULATOR=False))
        db = app.extensions["wx"].db
        started = time.perf_counter()
        rows = load(db.engine, args.touches, args.payments)
        print(f"loaded {rows:,} touches ({args.payments:,} payments) in {time.perf_counter() - started:.1f} s")
        last_day = date(2026, 11, 30)

        def count() -> str:
            with db.unit_of_work() as session:
                return f"{session.scalar(sa.text('SELECT COUNT(*) FROM touches')):,} rows"

        def report(days: int, view: str, grouping: str):
            def run() -> str:
                with db.unit_of_work():
                    result = funnel.report(last_day - timedelta(days=days - 1), last_day, view=view, grouping=grouping)
                t = result.total
                return f"{len(result.rows)} rows; total {t.scans}/{t.follows}/{t.members}/{t.visits}/{t.paying}"
            return run

        scenarios = {"count(*)": count}
        for days in (28, 90):
            for view in funnel.VIEWS:
                for grouping in funnel.GROUPINGS:
                    scenarios[f"{days}d {view} {grouping}"] = report(days, view, grouping)
        timings: dict[str, list[float]] = {name: [] for name in scenarios}
        answers: dict[str, str] = {}
        with app.app_context():
            for fn in scenarios.values():
                fn()  # warm-up: caches and plans
            for _ in range(args.rounds):
                for name, fn in scenarios.items():
                    t0 = time.perf_counter()
                    answers[name] = fn()
                    timings[name].append(1000 * (time.perf_counter() - t0))
        base = statistics.median(timings["count(*)"])
        print(f"\nmedian of {args.rounds} rounds (ms); x = times the COUNT(*) of the same run")
        print(f"{'scenario':<22}{'ms':>10}{'x':>8}   answer")
        for name, values in timings.items():
            median = statistics.median(values)
            print(f"{name:<22}{median:>10.1f}{median / base:>8.1f}   {answers[name]}")
    finally:
        if app is not None:
            app.extensions["wx"].db.dispose()
        if not args.keep:
            drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
