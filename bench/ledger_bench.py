"""Points ledger throughput on Postgres: no contention vs all on one member, with a baseline.

    .venv/bin/python bench/ledger_bench.py [--threads 1,8] [--ops 1000] [--max-seconds 10] [--rounds 3]
                                          [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

It creates (and drops afterwards) its own database, wx_ledger_bench, migrates it, and runs each
scenario with N threads, each operation in its own app context and unit of work (one transaction
and commit per award, as a job or a payment notification has):

  baseline     a plain INSERT of one points_ledger row per award: no row lock, no idempotency
               check, no balance update (what the table alone costs in the same harness);
  append/many  ledger.append to a member chosen from 2,000 (no contention);
  append/one   ledger.append, every award on ONE member (all serialised by its row lock);
  award/many   points.award_for_payment (spend row, ledger entry, level check), many members;
  award/one    the same on one member.

Every scenario stops after --ops operations or --max-seconds, whichever comes first; the
scenarios run interleaved for --rounds rounds after a warm-up and the median is reported, with
the CPU this process spent per operation (less sensitive than ops/s to a busy shared machine). Jobs that
an award asks for after commit (the card sync) are counted, not run, so only the ledger is timed.
After each scenario the ledger invariant is checked for every member touched.

Results: a table on stdout and bench/results/ledger.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import threading
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from bench.threaded import drop_database, recreate_database, run_scenario  # noqa: E402

DB_NAME = "wx_ledger_bench"
MEMBERS = 2000


class CountingQueue:
    """Stands in for the job queue: after-commit jobs are counted, not run."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def enqueue(self, func_path: str, **kwargs: Any) -> None:
        with self._lock:
            self.count += 1


def build_app(url: str):
    from config import load_settings
    from wx_service.app import create_app
    from wx_service.ground.db import upgrade_database

    upgrade_database(url)
    settings = load_settings({"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": "memory://",
                              "LOG_LEVEL": "WARNING"}, WECHAT_EMULATOR=False)
    app = create_app(settings)
    app.extensions["wx"].queue = CountingQueue()
    return app


def seed_members(app) -> list[int]:
    from members.models import Member

    db = app.extensions["wx"].db
    with app.app_context(), db.unit_of_work() as session:
        session.add_all([Member(level="silver") for _ in range(MEMBERS)])
        session.flush()
        return list(session.scalars(sa.select(Member.id).order_by(Member.id)))


def check_invariant(app, member_ids: set[int]) -> None:
    from members.models import Member, PointsEntry

    db = app.extensions["wx"].db
    with app.app_context(), db.unit_of_work() as session:
        sums = dict(session.execute(sa.select(PointsEntry.member_id, sa.func.sum(PointsEntry.delta))
                                    .where(PointsEntry.member_id.in_(member_ids)).group_by(PointsEntry.member_id)).all())
        for member in session.scalars(sa.select(Member).where(Member.id.in_(member_ids))):
            last = session.scalar(sa.select(PointsEntry.balance_after).where(PointsEntry.member_id == member.id)
                                  .order_by(PointsEntry.id.desc()).limit(1)) or 0
            assert member.points_balance == (sums.get(member.id) or 0) == last, (member.id, member.points_balance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the median is reported")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    thread_counts = [int(x) for x in args.threads.split(",")]
    if max(thread_counts) > 15:
        parser.error("the app's pool holds 15 connections; use at most 15 threads")

    url = recreate_database(args.pg, DB_NAME)
    try:
        app = build_app(url)
        from members import ledger, points
        from members.models import PointsEntry
        from wx_service.ground.db import utcnow
        from wx_service.ground.extensions import db

        members = seed_members(app)
        one = members[0]
        run_id = itertools.count()
        insert = sa.insert(PointsEntry)

        def scenarios(tag: str) -> dict[str, tuple[Callable[[int], None], set[int]]]:
            many = lambda i: members[1 + i % (MEMBERS - 1)]  # noqa: E731
            return {
                "baseline": (lambda i: db.session.execute(insert, {
                    "member_id": many(i), "delta": 10, "balance_after": 0, "reason": "payment",
                    "source_key": f"base:{tag}:{i}", "ref_key": "", "note": "", "created_at": utcnow()}), set()),
                "append/many": (lambda i: ledger.append(many(i), 10, "promotion", f"am:{tag}:{i}"), set(members[1:])),
                "append/one": (lambda i: ledger.append(one, 10, "promotion", f"ao:{tag}:{i}"), {one}),
                "award/many": (lambda i: points.award_for_payment(many(i), 1_000, f"wm:{tag}:{i}", utcnow()),
                               set(members[1:])),
                "award/one": (lambda i: points.award_for_payment(one, 1_000, f"wo:{tag}:{i}", utcnow()), {one}),
            }

        results: list[dict[str, Any]] = []
        names = list(scenarios("x"))
        for name, (op, _) in scenarios("warm").items():  # warm-up: connections, caches, plans
            run_scenario(app, max(thread_counts), 50, args.max_seconds, op)
        with app.app_context(), db.unit_of_work() as session:
            session.execute(sa.delete(PointsEntry).where(PointsEntry.source_key.like("base:%")))
        for round_no in range(args.rounds):  # interleaved, so machine drift biases no scenario
            for threads in thread_counts:
                tag = f"{round_no}-{threads}"
                for name, (op, touched) in scenarios(tag).items():
                    result = {"scenario": name, "round": round_no,
                              **run_scenario(app, threads, args.ops, args.max_seconds, op)}
                    if touched:
                        check_invariant(app, touched)
                    else:  # the baseline's rows bypass the balance: remove them before the real runs
                        with app.app_context(), db.unit_of_work() as session:
                            session.execute(sa.delete(PointsEntry).where(PointsEntry.source_key.like("base:%")))
                    results.append(result)
                    print(f"  round {round_no} {name:<12} threads={threads:<3} {result['per_second']:>8.1f} ops/s  "
                          f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  cpu {result['cpu_ms_per_op']} ms/op "
                          f"({result['ops']} ops, {result['errors']} errors)", flush=True)

        def median(name: str, threads: int, key: str) -> float:
            return statistics.median(r[key] for r in results if r["scenario"] == name and r["threads"] == threads)

        summary = {f"{name}@{t}": {key: median(name, t, key) for key in ("per_second", "p50_ms", "p99_ms", "cpu_ms_per_op")}
                   for name in names for t in thread_counts}
        print(f"\nmedian of {args.rounds} rounds, {args.ops} awards each (ops/s; p99 ms; bench-process CPU ms/op)")
        print(f"{'scenario':<14}" + "".join(f"{f'{t} thread(s)':>30}" for t in thread_counts))
        for name in names:
            cells = [summary[f"{name}@{t}"] for t in thread_counts]
            print(f"{name:<14}" + "".join(f"{c['per_second']:>12.1f}; p99 {c['p99_ms']:>6.1f}; {c['cpu_ms_per_op']:>5.2f}"
                                          for c in cells))
        for t in thread_counts:
            by = {name: summary[f"{name}@{t}"]["per_second"] for name in names}
            print(f"{t} thread(s): append/many = {by['append/many'] / by['baseline']:.2f} x baseline; "
                  f"append/one = {by['append/one'] / by['append/many']:.2f} x append/many; "
                  f"award/one = {by['award/one'] / by['award/many']:.2f} x award/many")

        out = REPO / "bench" / "results" / "ledger.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "members": MEMBERS, "ops_per_scenario": args.ops, "max_seconds": args.max_seconds,
            "rounds": args.rounds, "median": summary,
            "after_commit_jobs_counted": app.extensions["wx"].queue.count, "results": results,
        }, indent=2) + "\n")
        print(f"\nwritten: {out.relative_to(REPO)}")
        app.extensions["wx"].db.dispose()
    finally:
        drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
