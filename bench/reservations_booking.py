"""Booking throughput and latency on Postgres: 16 clients on one hot slot and on spread slots,
beside a plain INSERT baseline in the same run.

    .venv/bin/python bench/reservations_booking.py [--clients 16] [--ops 2000] [--max-seconds 20]
                                                  [--rounds 3] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

It creates (and drops afterwards) its own database, wx_reservations_bench, migrates it, and runs
each scenario with N client threads, every booking in its own app context and unit of work (one
transaction and commit, as a request to /api/mp has), each by a different shopper:

  baseline     a plain INSERT of one row into a scratch table (id, openid, starts_at, created_at):
               no checks, no locks; what one transaction and commit cost in this harness;
  book/hot     bookings.book on ONE start time of ONE resource with capacity 100,000, so it never
               sells out: every booking takes the same slot row's lock (`used < capacity`);
  book/spread  bookings.book spread over 1,440 start times (30 days, a slot every 30 minutes) of
               a resource with capacity 1,000: no two clients wait on the same slot row.

Scenarios run interleaved for --rounds rounds after a warm-up, and the median round is reported.
Notices the bookings queue after commit are counted, not sent. Afterwards the slot rows are
checked against the bookings (used == bookings per start; nothing oversold).

Results: a table on stdout and bench/results/reservations_booking.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from bench.threaded import drop_database, recreate_database, run_scenario  # noqa: E402

DB_NAME = "wx_reservations_bench"
SPREAD_SLOTS = 30 * 48


class CountingQueue:
    """Stands in for the job queue: after-commit jobs (the notices) are counted, not run."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def enqueue(self, func_path: str, **kwargs: Any) -> None:
        with self._lock:
            self.count += 1

    def enqueue_in(self, delay: float, func_path: str, **kwargs: Any) -> None:
        self.enqueue(func_path, **kwargs)


def build_app(url: str, clients: int):
    from config import load_settings
    from wx_service.app import create_app
    from wx_service.ground.db import upgrade_database

    upgrade_database(url)
    settings = load_settings({"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": "memory://",
                              "LOG_LEVEL": "WARNING"}, WECHAT_EMULATOR=False)
    app = create_app(settings)
    app.extensions["wx"].queue = CountingQueue()
    db = app.extensions["wx"].db
    # The app's pool holds 15; each client gets its own connection, as each web thread would.
    db.engine.dispose()
    db.engine = sa.create_engine(url, future=True, pool_size=clients, max_overflow=4)
    db._factory.configure(bind=db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_scratch (id serial PRIMARY KEY, openid varchar(64) NOT NULL, "
                             "starts_at timestamptz NOT NULL, created_at timestamptz NOT NULL)"))
    return app


def seed(app) -> tuple[int, int, list]:
    """A counter open round the clock; the hot service (one resource of 100,000) and the spread
    one (one resource of 1,000); returns their ids and the spread start times."""
    from reservations import setup, slots
    from wx_service.ground.db import utcnow

    db = app.extensions["wx"].db
    with app.app_context(), db.unit_of_work():
        setup.set_hours("BENCH", "daily 00:00-24:00")
        hot, _ = setup.define_service("hot", "热门", "BENCH", 30, 0, lead=0, horizon=31)
        setup.define_resource("hot", "大厅", "room", 100_000)
        spread, _ = setup.define_service("spread", "分散", "BENCH", 30, 0, lead=0, horizon=31)
        setup.define_resource("spread", "顾问", "staff", 1_000)
        first_day = slots.store_day(utcnow()) + timedelta(days=1)
        hours = slots.hours_for("BENCH", [first_day + timedelta(days=n) for n in range(30)])
        starts = slots.starts_between(spread, first_day, first_day + timedelta(days=29), hours)
        return hot.id, spread.id, starts


def check_nothing_oversold(app) -> dict[str, int]:
    """Every slot row's `used` equals the bookings holding it; returns the totals."""
    from reservations.models import Booking, SlotUsage

    db = app.extensions["wx"].db
    with app.app_context(), db.unit_of_work() as session:
        held = {(resource, starts): n for resource, starts, n in session.execute(
            sa.select(Booking.resource_id, Booking.starts_at, sa.func.count())
            .group_by(Booking.resource_id, Booking.starts_at))}
        for row in session.scalars(sa.select(SlotUsage)):
            assert row.used == held.get((row.resource_id, row.starts_at), 0) <= row.capacity, row.id
        return {"bookings": sum(held.values()), "slot_rows": session.scalar(sa.select(sa.func.count()).select_from(SlotUsage))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ops", type=int, default=2000, help="operations per scenario and round")
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the median is reported")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()

    url = recreate_database(args.pg, DB_NAME)
    try:
        app = build_app(url, args.clients)
        from reservations import bookings
        from wx_service.ground.db import utcnow
        from wx_service.ground.extensions import db

        hot, spread, starts = seed(app)
        hot_slot = starts[len(starts) // 2]
        insert = sa.text("INSERT INTO bench_scratch (openid, starts_at, created_at) VALUES (:o, :s, :c)")

        def scenarios(tag: str) -> dict[str, Callable[[int], None]]:
            return {
                "baseline": lambda i: db.session.execute(insert, {"o": f"o{tag}-{i}", "s": hot_slot, "c": utcnow()}),
                "book/hot": lambda i: bookings.book(hot, hot_slot, f"oHot{tag}-{i}", "tap"),
                "book/spread": lambda i: bookings.book(spread, starts[i % len(starts)], f"oSpread{tag}-{i}", "tap"),
            }

        names = list(scenarios("x"))
        for name, op in scenarios("warm").items():  # warm-up: connections, caches, plans
            run_scenario(app, args.clients, 100, args.max_seconds, op)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for round_no in range(args.rounds):  # interleaved, so the machine's drift biases no scenario
            order = names if round_no % 2 == 0 else list(reversed(names))
            for name in order:
                runs[name].append(run_scenario(app, args.clients, args.ops, args.max_seconds,
                                               scenarios(f"r{round_no}")[name]))
        totals = check_nothing_oversold(app)
        median = {name: sorted(r, key=lambda x: x["per_second"])[len(r) // 2] for name, r in runs.items()}
        print(f"\n{args.clients} clients, {args.ops} operations per scenario, median of {args.rounds} rounds")
        print(f"{'scenario':<13}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/op':>11}{'errors':>8}   rounds (ops/s)")
        for name in names:
            m = median[name]
            print(f"{name:<13}{m['per_second']:>9}{m['p50_ms']:>9}{m['p99_ms']:>9}{m['cpu_ms_per_op']:>11}"
                  f"{sum(r['errors'] for r in runs[name]):>8}   {', '.join(str(r['per_second']) for r in runs[name])}")
            if m["first_error"]:
                print(f"    first error: {m['first_error']}")
        base = median["baseline"]["per_second"]
        print(f"book/hot = {median['book/hot']['per_second'] / base:.2f} x baseline; "
              f"book/spread = {median['book/spread']['per_second'] / base:.2f} x baseline; "
              f"hot/spread = {median['book/hot']['per_second'] / median['book/spread']['per_second']:.2f}")
        print(f"checked: {totals['bookings']} bookings on {totals['slot_rows']} slot rows, used == bookings "
              f"everywhere; {app.extensions['wx'].queue.count} notices queued")
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "reservations_booking.json").write_text(json.dumps({
            "machine": platform.platform(), "cpus": os.cpu_count(), "clients": args.clients, "ops": args.ops,
            "rounds": runs, "median": median, "checked": totals}, indent=2))
    finally:
        try:
            app.extensions["wx"].db.dispose()
        except Exception:
            pass
        drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
