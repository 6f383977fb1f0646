"""Send throughput of the brand-news job: messages per second a worker delivers through the
emulated WeChat over real HTTP, beside the bare template-send loop in the same run.

    .venv/bin/python bench/brand_news_send.py [--subscribers 5000] [--rounds 3]
                                             [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

It creates (and drops afterwards) its own database, wx_brand_news_bench, migrates it, serves the
app with the emulator on a loopback port (werkzeug, threaded, as the tests do), and seeds N OA
followers subscribed to one brand (bulk inserts). Then, per round, one after the other:

  baseline  the bare loop: StoreWeChatClient.post("message/template/send") N times, each with its
            own client_msg_id, to the same emulator: the HTTP call and the emulator's work alone;
  job       announce a new arrival and run its chunk jobs in this process, one after another
            (run_job, one unit of work each, as an RQ work-horse runs them): the chunk's grouped
            queries, the delivery rows, the sends, the verdicts in batches, the progress;
  job/noop  the same job with WeChat's answer stubbed (no HTTP): the job's own cost per message.

The scenarios take turns (the order flips every round) and the median is reported. Every message is checked to have arrived once.
Redis is memory:// (the token store; the job queue is replaced by a list the loop drains).

Results: a table on stdout and bench/results/brand_news_send.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from bench.threaded import drop_database, recreate_database  # noqa: E402

DB_NAME = "wx_brand_news_bench"


class ListQueue:
    """Stands in for the job queue: after-commit jobs are kept for the loop to run in turn."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, func_path: str, **kwargs: Any) -> None:
        self.jobs.append((func_path, kwargs))

    def enqueue_in(self, delay: float, func_path: str, **kwargs: Any) -> None:
        self.enqueue(func_path, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_app(url: str):
    from werkzeug.serving import make_server

    from config import load_settings
    from wx_service.app import create_app
    from wx_service.ground.db import upgrade_database

    upgrade_database(url)
    port = _free_port()
    settings = load_settings({"APP_ENV": "test", "DATABASE_URL": url, "REDIS_URL": "memory://", "LOG_LEVEL": "WARNING"},
                             WECHAT_API_BASE=f"http://127.0.0.1:{port}/_emulator")
    app = create_app(settings)
    app.extensions["wx"].queue = ListQueue()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server


def seed(app, n: int) -> tuple[int, list[str]]:
    from marketing.models import Brand, BrandSubscription
    from members.models import Follower
    from wx_service.ground.db import utcnow

    emulator = app.extensions["wx_emulator"]
    openids = [f"oBench{i:06d}" for i in range(n)]
    for openid in openids:
        emulator.add_shopper(openid, "顾客").subscribed = True
    db = app.extensions["wx"].db
    earlier = utcnow() - timedelta(hours=1)
    with app.app_context(), db.unit_of_work() as session:
        brand = Brand(name="兰蔻", name_en="Lancome", counter_code="LANCOME")
        session.add(brand)
        session.flush()
        session.execute(sa.insert(Follower), [{"openid": o, "subscribed": True, "first_subscribed_at": earlier,
                                               "first_scene": "", "nickname": ""} for o in openids])
        session.execute(sa.insert(BrandSubscription), [{"openid": o, "brand_id": brand.id, "active": True, "channel": "h5",
                                                        "created_at": earlier, "changed_at": earlier} for o in openids])
        return brand.id, openids


def run_baseline(app, openids: list[str], tag: str) -> float:
    from wx_service.ground.extensions import wechat_client

    with app.app_context():
        client = wechat_client()
        template = app.extensions["wx"].settings.BRAND_NEWS_TEMPLATE_ID
        started = time.perf_counter()
        for i, openid in enumerate(openids):
            client.post("message/template/send", data={
                "touser": openid, "template_id": template, "client_msg_id": f"base-{tag}-{i}",
                "data": {"first": {"value": "新品上市"}, "keyword1": {"value": "兰蔻"}, "keyword2": {"value": "精华"},
                         "keyword3": {"value": "2026-12-03 10:00"}, "keyword4": {"value": "¥1280.00 到店试用"}}})
        return time.perf_counter() - started


class NoopClient:
    def post(self, path: str, data: dict) -> dict:
        return {"errcode": 0, "errmsg": "ok", "msgid": 1}


def run_job_round(app, brand_id: int, tag: str, stub: bool = False) -> tuple[float, dict[str, int], int]:
    from marketing import announcements, news_jobs
    from marketing.models import NewArrival
    from wx_service.ground.db import utcnow
    from wx_service.ground.queue import run_job

    db = app.extensions["wx"].db
    queue: ListQueue = app.extensions["wx"].queue
    with app.app_context(), db.unit_of_work() as session:
        item = NewArrival(brand_id=brand_id, product=f"新品{tag}", price_fen=1280_00, status="published",
                          published_at=utcnow())
        session.add(item)
        session.flush()
        item_id = item.id
    real_client = news_jobs.wechat_client
    if stub:
        news_jobs.wechat_client = NoopClient
    try:
        started = time.perf_counter()
        with app.app_context(), db.unit_of_work():
            made = announcements.announce("new_arrival", item_id).id
        chunks = 0
        while queue.jobs:
            path, kwargs = queue.jobs.pop(0)
            with app.app_context():
                run_job(path, kwargs)
            chunks += 1
        elapsed = time.perf_counter() - started
    finally:
        news_jobs.wechat_client = real_client
    with app.app_context(), db.unit_of_work():
        counts = announcements.progress_json(announcements.refresh_progress(made))["counts"]
    return elapsed, counts, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    n = args.subscribers

    url = recreate_database(args.pg, DB_NAME)
    server = None
    try:
        app, server = build_app(url)
        emulator = app.extensions["wx_emulator"]
        brand_id, openids = seed(app, n)
        # The cap would stop the second round at two messages a shopper: it is not what is measured.
        object.__setattr__(app.extensions["wx"].settings, "BRAND_NEWS_WEEKLY_CAP", 0)
        run_baseline(app, openids[:200], "warm")
        base_times, job_times, noop_times, chunk_counts = [], [], [], []

        def job(r: int) -> None:
            elapsed, counts, chunks = run_job_round(app, brand_id, str(r))
            assert counts["sent"] == n and sum(counts.values()) == n, counts
            job_times.append(elapsed)
            chunk_counts.append(chunks)

        def noop(r: int) -> None:
            elapsed, counts, _ = run_job_round(app, brand_id, f"noop{r}", stub=True)
            assert counts["sent"] == n, counts
            noop_times.append(elapsed)

        def baseline(r: int) -> None:
            base_times.append(run_baseline(app, openids, str(r)))

        turns = [baseline, job, noop]
        for r in range(args.rounds):
            for scenario in (turns if r % 2 == 0 else list(reversed(turns))):
                scenario(r)
        seen = {sum(1 for line in emulator.shoppers[o].chat if line.get("client_msg_id", "").startswith("bn-"))
                for o in openids}
        assert seen == {args.rounds}, seen  # every shopper got each round's message exactly once
        base, job, noop = statistics.median(base_times), statistics.median(job_times), statistics.median(noop_times)
        result = {
            "subscribers": n, "rounds": args.rounds, "chunk_size": app.extensions["wx"].settings.BRAND_NEWS_CHUNK_SIZE,
            "chunks_per_round": chunk_counts[0],
            "baseline_msgs_per_s": round(n / base, 1), "job_msgs_per_s": round(n / job, 1),
            "baseline_ms_per_msg": round(1000 * base / n, 3), "job_ms_per_msg": round(1000 * job / n, 3),
            "job_overhead_ms_per_msg": round(1000 * (job - base) / n, 3), "job_vs_baseline": round(base / job, 3),
            "noop_job_msgs_per_s": round(n / noop, 1), "noop_job_ms_per_msg": round(1000 * noop / n, 3),
            "baseline_seconds": [round(t, 2) for t in base_times], "job_seconds": [round(t, 2) for t in job_times],
            "noop_job_seconds": [round(t, 2) for t in noop_times],
            "python": platform.python_version(), "cpus": os.cpu_count(),
        }
        print(f"{'':<10}{'msgs/s':>10}{'ms/msg':>10}   ({n} subscribers, {args.rounds} rounds, median)")
        print(f"{'baseline':<10}{result['baseline_msgs_per_s']:>10}{result['baseline_ms_per_msg']:>10}")
        print(f"{'job':<10}{result['job_msgs_per_s']:>10}{result['job_ms_per_msg']:>10}   "
              f"= {result['job_vs_baseline']:.0%} of the bare loop's rate; {result['job_overhead_ms_per_msg']} ms/msg more")
        print(f"{'job/noop':<10}{result['noop_job_msgs_per_s']:>10}{result['noop_job_ms_per_msg']:>10}   "
              "(WeChat stubbed: the job's own queries and bookkeeping)")
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "brand_news_send.json").write_text(json.dumps(result, indent=2))
    finally:
        if server is not None:
            server.shutdown()
        try:
            from wx_service.ground.extensions import db as ground_db
            ground_db.dispose()
        except Exception:  # noqa: BLE001 - best effort before the drop
            pass
        drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
