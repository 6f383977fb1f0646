"""What the database benchmarks share: a scratch Postgres database made and dropped for the run,
and the threaded load harness (N threads, each running one operation per unit of work, one
transaction and commit as a request has, timed per operation)."""
from __future__ import annotations

import itertools
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import sqlalchemy as sa


def _admin_engine(pg: str) -> sa.Engine:
    return sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")


def recreate_database(pg: str, name: str) -> str:
    """A fresh, empty database `name` on the server at `pg`; its URL."""
    with _admin_engine(pg).connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    return f"{pg}/{name}"


def drop_database(pg: str, name: str) -> None:
    with _admin_engine(pg).connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run_scenario(app, threads: int, ops: int, max_seconds: float, op: Callable[[int], None]) -> dict[str, Any]:
    """Run `op(i)` for i in 0..ops-1 on `threads` threads, one unit of work each; time it."""
    db = app.extensions["wx"].db
    counter = itertools.count()
    deadline = time.monotonic() + max_seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)

    def worker(slot: int) -> None:
        mine = latencies[slot]
        barrier.wait()
        with app.app_context():
            while time.monotonic() < deadline:
                i = next(counter)
                if i >= ops:
                    return
                started = time.perf_counter()
                try:
                    with db.unit_of_work():
                        op(i)
                except Exception as exc:  # counted and shown: a benchmark must not hide failures
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                mine.append(time.perf_counter() - started)

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker, slot) for slot in range(threads)]
        barrier.wait()
        started, cpu_started = time.perf_counter(), time.process_time()
        for future in futures:
            future.result()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    flat = sorted(x for per in latencies for x in per)
    done = len(flat)
    return {"threads": threads, "ops": done, "seconds": round(elapsed, 3), "per_second": round(done / elapsed, 1),
            "p50_ms": round(1000 * statistics.median(flat), 2) if flat else None,
            "p99_ms": round(1000 * flat[min(done - 1, int(done * 0.99))], 2) if flat else None,
            "cpu_ms_per_op": round(1000 * cpu / done, 3) if done else None,
            "errors": len(errors), "first_error": errors[0] if errors else ""}
