"""Slot generation time on Postgres: availability for each of 30 days of a service with 20
resources, beside the bare query of the usage rows it reads.

    .venv/bin/python bench/reservations_slots.py [--rounds 20] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

It creates (and drops afterwards) its own database, wx_reservations_slots_bench: one counter open
10:00-22:00 (closed one day, late another), one service of 30 minutes with 20 resources of
capacity 2, and half of every resource's start times already partly used (7,000 usage rows), plus
a few shoppers waiting. Each day's figure is one unit of work, as one /api/mp request for a day's
slots is:

  baseline     the bare usage query of that day (SUM(used) per start over the 20 resources);
  grid only    the pure slot generation of that day from hours already loaded (no database);
  availability bookings.availability(service, day): service and resources, the day's hours and
               exception, the usage and the waiting list, then the grid (six queries).

A round asks for all 30 days; --rounds rounds, the median round is reported (ms per 30 days).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

DB_NAME = "wx_reservations_slots_bench"
RESOURCES, DAYS = 20, 30


def admin_engine(pg: str) -> sa.Engine:
    return sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    with admin_engine(args.pg).connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DB_NAME}"))
    url = f"{args.pg}/{DB_NAME}"
    app = None
    try:
        from config import load_settings
        from wx_service.app import create_app
        from wx_service.ground.db import upgrade_database, utcnow

        upgrade_database(url)
        app = create_app(load_settings({"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": "memory://",
                                        "LOG_LEVEL": "WARNING"}, WECHAT_EMULATOR=False))
        from reservations import bookings, setup, slots
        from reservations.models import SlotUsage, WaitlistEntry

        db = app.extensions["wx"].db
        now = utcnow()
        first = slots.store_day(now) + timedelta(days=1)
        days = [first + timedelta(days=n) for n in range(DAYS)]
        with app.app_context(), db.unit_of_work() as session:
            service, _ = setup.define_service("bench", "基准", "BENCH", 30, 0, lead=0, horizon=DAYS + 1)
            resources = [setup.define_resource("bench", f"R{n:02d}", "staff", 2)[0] for n in range(RESOURCES)]
            setup.set_hours("BENCH", "daily 10:00-22:00")
            setup.set_exception("*", days[5], "closed", "休息")
            setup.set_exception("BENCH", days[9], "10:00-23:30", "夜场")
            hours = slots.hours_for("BENCH", days)
            starts = slots.starts_between(service, days[0], days[-1], hours)
            session.add_all([SlotUsage(resource_id=r.id, starts_at=s, capacity=2, used=1 + (n % 2))
                             for r in resources for n, s in enumerate(starts) if n % 2 == 0])
            session.add_all([WaitlistEntry(service_id=service.id, starts_at=s, openid=f"oWait{n}", status="waiting")
                             for n, s in enumerate(starts[::40])])
            service_id, resource_ids = service.id, [r.id for r in resources]
            rows = session.scalar(sa.select(sa.func.count()).select_from(SlotUsage))
        usage = (sa.select(SlotUsage.starts_at, sa.func.sum(SlotUsage.used))
                 .where(SlotUsage.resource_id.in_(resource_ids)).group_by(SlotUsage.starts_at))

        def baseline() -> int:
            n = 0
            for day in days:
                with db.unit_of_work() as session:
                    n += len(session.execute(usage.where(SlotUsage.starts_at.between(
                        slots.store_midnight(day), slots.store_midnight(day + timedelta(days=1))))).all())
            return n

        def grid_only() -> int:
            with db.unit_of_work() as session:
                made = session.get(type(service), service_id)
            return sum(len(slots.starts_between(made, day, day, hours)) for day in days)

        def availability() -> int:
            n = 0
            for day in days:
                with db.unit_of_work():
                    n += len(bookings.availability(service_id, day, now))
            return n

        scenarios = {"baseline": baseline, "grid only": grid_only, "availability": availability}
        timings: dict[str, list[float]] = {name: [] for name in scenarios}
        counts: dict[str, int] = {}
        with app.app_context():
            for fn in scenarios.values():
                fn()  # warm-up
            for round_no in range(args.rounds):
                for name in (scenarios if round_no % 2 == 0 else reversed(list(scenarios))):
                    started = time.perf_counter()
                    counts[name] = scenarios[name]()
                    timings[name].append(1000 * (time.perf_counter() - started))
        print(f"\n{DAYS} days x {RESOURCES} resources ({len(starts)} start times, {rows} usage rows); "
              f"median of {args.rounds} rounds")
        print(f"{'scenario':<14}{'ms / 30 days':>14}{'ms / day':>10}{'min':>8}{'max':>8}   rows or slots")
        for name, values in timings.items():
            median = statistics.median(values)
            print(f"{name:<14}{median:>14.1f}{median / DAYS:>10.2f}{min(values):>8.1f}{max(values):>8.1f}   {counts[name]}")
        ratio = statistics.median(timings["availability"]) / statistics.median(timings["baseline"])
        print(f"availability = {ratio:.2f} x the bare usage query")
    finally:
        if app is not None:
            app.extensions["wx"].db.dispose()
        with admin_engine(args.pg).connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))


if __name__ == "__main__":
    main()
