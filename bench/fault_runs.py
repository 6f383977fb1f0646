"""Faults under load: Redis, then Postgres, stopped for 10 s while pushes and payment
notifications flow, with WeChat's retries replayed. Counts, not timings.

    .venv/bin/python bench/fault_runs.py [--down 10] [--rate-pushes 20] [--rate-notifications 10]

Needs this machine's own Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379), which it stops
and starts again (they are restarted in a `finally`, whatever happens). It uses a scratch
database `wx_faults` (created when missing, emptied at the start) and Redis db 12.

The real app (wsgi:app) runs under gunicorn (2 workers x 4 threads, RQ as the queue) with WeChat
Pay on, keyed with throw-away keys. For each fault, two senders run for `--before + --down +
--after` seconds:

  pushes         safe-mode text pushes from distinct shoppers, each retried as WeChat does: the
                 identical request again when it was not answered 200 within 5 s, three tries in
                 all, then given up;
  notifications  one TRANSACTION.SUCCESS per order, signed and encrypted as WeChat Pay does,
                 resent (same notification id) every second until it is answered 204, and after
                 the run until every one is acknowledged or 90 s pass.

Counted afterwards, from the answers and from the database:

  pushes:         sent, answered (200), given up; recorded once (answered pushes with exactly one
                  inbound_pushes row), recorded twice, answered but not recorded;
  notifications:  sent, acknowledged (204), applied once (order PAID, one pay_transactions row,
                  one points entry), applied more than once, lost (acknowledged, not applied: must
                  be 0), refused answers seen while the fault lasted (non-204 and failed exchanges).

Exit 1 when a notification was lost or applied twice, or a push was recorded twice.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pay_notify_load import app_env, payment_body, seed, signed_headers  # noqa: E402
from bench.webhook_load import HOST, Server, _state, log  # noqa: E402
from config.settings import DEMO_ORIGINAL_ID  # noqa: E402
from payments.demo_keys import ensure_demo_merchant  # noqa: E402
from wx_service.edges.emulator.pay_state import load_platform_cert  # noqa: E402
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wx_faults"
REDIS_URL = "redis://127.0.0.1:6379/12"
PG_CLUSTER = sorted(os.listdir("/etc/postgresql"))[0] if os.path.isdir("/etc/postgresql") else "15"
START_REDIS = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


# -- the servers this machine runs -----------------------------------------------------------------

def redis_up() -> bool:
    return subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True).stdout.strip() == "PONG"


def postgres_up() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0


def stop_redis() -> None:
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True)


def start_redis() -> None:
    if not redis_up():
        subprocess.run(START_REDIS, capture_output=True)
    _wait(redis_up, "Redis")


def stop_postgres() -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_CLUSTER, "main", "stop", "-m", "fast"],
                   capture_output=True)


def start_postgres() -> None:
    if not postgres_up():
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_CLUSTER, "main", "start"], capture_output=True)
    _wait(postgres_up, "Postgres")


def _wait(check, name: str) -> None:
    for _ in range(60):
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not come back")


# -- traffic ---------------------------------------------------------------------------------------

@dataclass
class Tally:
    pushes: dict[int, str] = field(default_factory=dict)        # msg id -> answered / given up
    notified: list[str] = field(default_factory=list)            # out_trade_no sent at least once
    acked: set[str] = field(default_factory=set)                 # out_trade_no acknowledged
    refusals: Counter = field(default_factory=Counter)           # non-204/200 answers and failed exchanges
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post(port: int, path: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def push_sender(port: int, tally: Tally, stop_at: float, rate: float, first_msg_id: int) -> None:
    """WeChat's way with a push: the same request up to three times, 5 s apart, then give up."""
    state = _state()
    msg_id = first_msg_id
    pending: list[tuple[float, int, int, str, bytes]] = []  # (due, tries so far, msg id, path, body)
    next_new = time.monotonic()
    while time.monotonic() < stop_at or pending:
        now = time.monotonic()
        if now >= next_new and now < stop_at:
            timestamp = str(int(time.time()))
            fields = [("ToUserName", DEMO_ORIGINAL_ID), ("FromUserName", f"oFault{msg_id:022d}"),
                      ("CreateTime", int(timestamp)), ("MsgType", "text"), ("Content", "帮助"), ("MsgId", msg_id)]
            query, body = sign_and_wrap(state, build_push_xml(fields), "safe", timestamp, uuid.uuid4().hex[:10])
            pending.append((now, 0, msg_id, "/wechat?" + urlencode(query), body))
            msg_id += 1
            next_new = now + 1 / rate
        due = [p for p in pending if p[0] <= now]
        if not due:
            time.sleep(0.01)
            continue
        item = min(due)
        pending.remove(item)
        _due, tries, mid, path, body = item
        try:
            status, _ = _post(port, path, body, {"Content-Type": "text/xml"}, timeout=5)
        except OSError as exc:
            status = 0
            with tally.lock:
                tally.refusals[f"push: {type(exc).__name__}"] += 1
        with tally.lock:
            if status == 200:
                tally.pushes[mid] = "answered"
                continue
            if status:
                tally.refusals[f"push: http {status}"] += 1
            if tries + 1 >= 3:
                tally.pushes[mid] = "given up"
            else:
                pending.append((time.monotonic() + 5, tries + 1, mid, path, body))


def notification_sender(port: int, tally: Tally, orders: list, bodies: dict[str, bytes], key, serial: str,
                        stop_new_at: float, give_up_at: float, rate: float) -> None:
    """WeChat Pay's way with a notification: the same one again until it is answered 2xx."""
    queue = list(orders)
    pending: list[tuple[float, str]] = []
    next_new = time.monotonic()
    while time.monotonic() < give_up_at and (queue or pending):
        now = time.monotonic()
        if queue and now >= next_new and now < stop_new_at:
            out_trade_no = queue.pop(0)[0]
            pending.append((now, out_trade_no))
            with tally.lock:
                tally.notified.append(out_trade_no)
            next_new = now + 1 / rate
        due = [p for p in pending if p[0] <= now]
        if not due:
            if not pending and now >= stop_new_at:
                break
            time.sleep(0.01)
            continue
        item = min(due)
        pending.remove(item)
        out_trade_no = item[1]
        body = bodies[out_trade_no]
        try:
            status, answer = _post(port, "/pay/notify", body, signed_headers(key, serial, body), timeout=10)
        except OSError as exc:
            status, answer = 0, type(exc).__name__.encode()
        with tally.lock:
            if 200 <= status < 300:
                tally.acked.add(out_trade_no)
                continue
            tally.refusals[f"notify: {status or answer.decode()} {answer[:60].decode('utf-8', 'replace')}".strip()] += 1
        pending.append((time.monotonic() + 1.0, out_trade_no))


# -- one scenario ----------------------------------------------------------------------------------

def db_counts(orders: list, msg_ids: list[int]) -> dict:
    import psycopg

    numbers = [o[0] for o in orders]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/wx_faults", autocommit=True) as conn:
        state = dict(conn.execute("SELECT out_trade_no, state FROM pay_orders WHERE out_trade_no = ANY(%s)",
                                  (numbers,)).fetchall())
        tx = dict(conn.execute("SELECT o.out_trade_no, count(t.id) FROM pay_orders o LEFT JOIN pay_transactions t "
                               "ON t.order_id = o.id WHERE o.out_trade_no = ANY(%s) GROUP BY o.out_trade_no",
                               (numbers,)).fetchall())
        points = dict(conn.execute("SELECT ref_key, count(*) FROM points_ledger WHERE reason = 'payment' "
                                   "AND ref_key = ANY(%s) GROUP BY ref_key", (numbers,)).fetchall())
        rows = dict(conn.execute("SELECT dedup_key, count(*) FROM inbound_pushes WHERE dedup_key = ANY(%s) "
                                 "GROUP BY dedup_key", ([f"msg:{m}" for m in msg_ids],)).fetchall())
    return {"state": state, "tx": tx, "points": points, "pushes": rows}


def scenario(name: str, stop, start, args, server: Server, orders: list, bodies: dict, key, serial: str,
             first_msg_id: int) -> dict:
    log(f"{name}: traffic for {args.before + args.down + args.after} s, the fault from {args.before} s for {args.down} s")
    tally = Tally()
    t0 = time.monotonic()
    stop_at = t0 + args.before + args.down + args.after
    threads = [threading.Thread(target=push_sender, args=(server.port, tally, stop_at, args.rate_pushes, first_msg_id)),
               threading.Thread(target=notification_sender, args=(server.port, tally, orders, bodies, key, serial,
                                                                  stop_at, stop_at + 90, args.rate_notifications))]
    for thread in threads:
        thread.start()
    time.sleep(args.before)
    stop()
    log(f"{name}: stopped")
    time.sleep(args.down)
    start()
    log(f"{name}: started again")
    for thread in threads:
        thread.join()
    msg_ids = sorted(tally.pushes)
    counts = db_counts(orders, msg_ids)
    answered = [m for m, s in tally.pushes.items() if s == "answered"]
    rec = counts["pushes"]
    notified = tally.notified
    applied_once = [n for n in notified if counts["state"].get(n) == "PAID" and counts["tx"].get(n) == 1
                    and counts["points"].get(n) == 1]
    applied_twice = [n for n in notified if counts["tx"].get(n, 0) > 1 or counts["points"].get(n, 0) > 1]
    lost = [n for n in tally.acked if n not in applied_once]
    return {
        "scenario": name,
        "pushes_sent": len(msg_ids), "pushes_answered": len(answered),
        "pushes_given_up": sum(s == "given up" for s in tally.pushes.values()),
        "pushes_recorded_once": sum(rec.get(f"msg:{m}", 0) == 1 for m in answered),
        "pushes_recorded_twice": sum(c > 1 for c in rec.values()),
        "pushes_answered_not_recorded": sum(rec.get(f"msg:{m}", 0) == 0 for m in answered),
        "notifications_sent": len(notified), "notifications_acknowledged": len(tally.acked),
        "notifications_applied_once": len(applied_once), "notifications_applied_twice": len(applied_twice),
        "notifications_lost": len(lost), "refusals": dict(tally.refusals.most_common(8)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--down", type=float, default=10.0, help="seconds each server stays stopped")
    ap.add_argument("--before", type=float, default=5.0)
    ap.add_argument("--after", type=float, default=10.0)
    ap.add_argument("--rate-pushes", type=float, default=20.0, help="new pushes per second")
    ap.add_argument("--rate-notifications", type=float, default=10.0, help="new notifications per second")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    args.database_url, args.redis_url = PG_URL, REDIS_URL

    start_postgres()
    start_redis()
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'wx_faults'").fetchone():
            conn.execute("CREATE DATABASE wx_faults")
    from bench.pay_notify_load import ScratchDatabase
    from wx_service.ground.db import upgrade_database

    upgrade_database(PG_URL)
    scratch = ScratchDatabase(PG_URL)
    scratch.empty()
    scratch.engine.dispose()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    per_scenario = int((args.before + args.down + args.after) * args.rate_notifications) + 10
    tmp = tempfile.TemporaryDirectory(prefix="faults-")
    server = None
    results = []
    try:
        keys = ensure_demo_merchant(tmp.name)
        platform = load_platform_cert(keys["EMULATOR_PAY_KEY_FILE"])
        apiv3_key = Path(keys["WXPAY_APIV3_KEY_FILE"]).read_bytes().strip()
        orders = seed(PG_URL, 200, {"R": per_scenario, "P": per_scenario}, random.Random(7))
        bodies = {no: payment_body(apiv3_key, no, fen, openid, str(uuid.uuid4()))
                  for batch in orders.values() for no, fen, openid in batch}
        server = Server("faults", "wsgi:app", app_env(args, keys), args)
        server.start()
        log(f"gunicorn on port {server.port}: {args.workers} workers x {args.threads} threads")
        results.append(scenario("redis stopped", stop_redis, start_redis, args, server, orders["R"], bodies,
                                platform.key, platform.serial, 1_000_000))
        results.append(scenario("postgres stopped", stop_postgres, start_postgres, args, server, orders["P"], bodies,
                                platform.key, platform.serial, 2_000_000))
    finally:
        start_postgres()
        start_redis()
        if server is not None:
            server.stop()
        tmp.cleanup()
    print(json.dumps(results, indent=2, ensure_ascii=False))
    bad = any(r["notifications_lost"] or r["notifications_applied_twice"] or r["pushes_recorded_twice"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
