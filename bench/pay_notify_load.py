"""Load benchmark of POST /pay/notify: the full pipeline against verify + decrypt alone.

    .venv/bin/python bench/pay_notify_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/wx_paybench \\
        --redis-url redis://127.0.0.1:6379/13 [--orders 2000] [--concurrency 4,8,16]

Two gunicorn servers with the same command line (default 2 workers x 4 gthreads) on free
loopback ports, in the same run:

  full      the real app (wsgi:app) with WeChat Pay configured: verify the signature, decrypt the
            resource, lock the order row, run the state machine, award points to the member
            behind the payer's openid, record the notification, commit, answer 204;
  baseline  bench/pay_baseline_app.py: the same verifier and decrypt (payments.wxpay_v3), 204.

Set-up (not timed): throw-away merchant and platform keys in a temporary folder
(payments/demo_keys.py), --members members each with a mini-program openid
(members.identity.resolve_member), and for every concurrency level its own --orders JSAPI orders
(payments.service.create_order), plus a few for the warm-up. Before each phase every notification
of the phase is built as WeChat builds it: a TRANSACTION.SUCCESS envelope, the resource encrypted
with AES-256-GCM under the APIv3 key, RSA-SHA256 over "timestamp\\nnonce\\nbody\\n" with the
platform key, Wechatpay-* headers. Signing is WeChat's cost, so it is done before the clock starts,
and each phase gets fresh timestamps (the app refuses any more than 5 minutes off; they are set 2
minutes ahead so that a long phase on a slow machine stays inside the window).

Phases, at each concurrency level (N keep-alive connections, closed loop, until the phase's
notifications are all answered; the servers take turns so that drift on the shared machine
biases neither):

  baseline     the level's notifications, to the baseline;
  full         the same notifications, to the real app: each pays one order;
  duplicates   the same notifications again (same notification ids, freshly signed: WeChat's
               retries), to the real app: each must answer 204 and change nothing.

Every answer must be 204. Afterwards the database is checked: every order PAID, exactly one
pay_transactions row and one payment points entry per order, points on the member behind the
payer's openid, every member's balance equal to the sum of its ledger, and nothing changed by the
duplicate rounds. Any failed check is printed and the script exits 1: a benchmark that fails
silently is worse than none.

The database and Redis db must be scratch ones: the script refuses non-empty ones (unless
--wipe), migrates the database, and empties both at the end (unless --keep-data). SQLite is
refused: under gunicorn's processes its single writer would be the figure, not the pipeline.

Results: a table on stdout and bench/results/pay_notify_load.json; gunicorn logs in bench/results/.
Reuses the server, CPU and connection-balancing helpers of bench/webhook_load.py.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from bench.webhook_load import (  # noqa: E402
    HOST,
    REQUEST_TIMEOUT,
    RESULTS,
    PhaseSpec,
    Server,
    _busy_cores,
    _cpu_by_pid,
    _cpu_delta,
    _machine_cpu,
    _on_signal,
    _plain_pg,
    _stop_all,
    connections_per_worker,
    dial,
    log,
    percentile,
    split,
    wait_for_quiet,
)
from config.settings import DEMO_AES_KEY, DEMO_APPID, DEMO_ORIGINAL_ID, DEMO_SECRET, DEMO_TOKEN  # noqa: E402
from payments.demo_keys import DEMO_MCHID, ensure_demo_merchant  # noqa: E402
from payments.wxpay_v3 import build_verify_message, encrypt_resource  # noqa: E402
from wx_service.edges.emulator.pay_state import load_platform_cert  # noqa: E402

APPID = DEMO_APPID  # the app the orders are placed for (the mini-program's falls back to the OA's)
WARMUP_ORDERS = 200
SIGN_AHEAD = 120  # seconds; see signed_headers
SHANGHAI = timezone(timedelta(hours=8))


# ---------------------------------------------------------------------------------------------
# Notifications, built as WeChat Pay builds them
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Payment:
    """One order and the notification that pays it (its id and body are fixed; headers are not)."""

    out_trade_no: str
    amount_fen: int
    openid: str
    notification_id: str
    body: bytes


def payment_body(apiv3_key: bytes, out_trade_no: str, amount_fen: int, openid: str, notification_id: str) -> bytes:
    """A TRANSACTION.SUCCESS envelope with its resource encrypted under the APIv3 key."""
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    resource = {"appid": APPID, "mchid": DEMO_MCHID, "out_trade_no": out_trade_no,
                "transaction_id": "42000" + uuid.uuid4().hex[:23], "trade_type": "JSAPI",
                "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
                "attach": "", "success_time": now.isoformat(), "payer": {"openid": openid},
                "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY",
                           "payer_currency": "CNY"}}
    envelope = {"id": notification_id, "create_time": now.isoformat(), "resource_type": "encrypt-resource",
                "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                "resource": encrypt_resource(apiv3_key, json.dumps(resource, ensure_ascii=False),
                                             associated_data="transaction")}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(platform_key: Any, serial: str, body: bytes) -> dict[str, str]:
    """Wechatpay-* headers over `body`, signed now with the platform key.

    The timestamp is SIGN_AHEAD seconds ahead of the clock: the app accepts +-300 s, so a phase
    signed in advance stays acceptable for 300 + SIGN_AHEAD s even on a slow, shared machine."""
    timestamp = str(int(time.time()) + SIGN_AHEAD)
    nonce = uuid.uuid4().hex.upper()
    signature = platform_key.sign(build_verify_message(timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json",
            "User-Agent": "Mozilla/4.0"}


# ---------------------------------------------------------------------------------------------
# Load process (forked: it inherits the phase's pre-built requests)
# ---------------------------------------------------------------------------------------------
_REQUESTS: list[tuple[bytes, dict[str, str]]] = []  # the current phase's requests, set before forking


def load_process(proc: int, spec: PhaseSpec, indices: list[int], ready: Any, go: Any, results: Any) -> None:
    """Send this process's share of the phase's requests over its connections; report each answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    nthreads = spec.threads_per_proc[proc]
    conns = dial(spec, proc, nthreads)
    counter = itertools.count()
    # Per thread: (request index, status, t_sent, t_done, start of a non-204 answer's body).
    records: list[list[tuple[int, int, float, float, bytes]]] = [[] for _ in range(nthreads)]
    failures: list[list[str]] = [[] for _ in range(nthreads)]

    def drive(t: int) -> None:
        rec, fail = records[t], failures[t]
        now = time.monotonic
        while True:
            k = next(counter)
            if k >= len(indices):
                return
            i = indices[k]
            body, headers = _REQUESTS[i]
            sent = now()
            try:
                conns[t].request("POST", "/pay/notify", body, headers)
                resp = conns[t].getresponse()
                data = resp.read()
            except Exception as exc:  # every failed exchange is an error of the phase
                fail.append(type(exc).__name__)
                with contextlib.suppress(Exception):
                    conns[t].close()
                conns[t] = http.client.HTTPConnection(HOST, spec.port, timeout=REQUEST_TIMEOUT)
                continue
            rec.append((i, resp.status, sent, now(), b"" if resp.status == 204 else data[:120]))

    ready.wait()
    go.wait()
    cpu0 = time.process_time()
    threads = [threading.Thread(target=drive, args=(t,), daemon=True) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cpu_used = time.process_time() - cpu0
    for conn in conns:
        with contextlib.suppress(Exception):
            conn.close()
    sent_at, done_at = array("d"), array("d")
    errors: dict[str, int] = {}
    for rec in records:
        for _i, status, sent, done, head in rec:
            if status == 204:
                sent_at.append(sent)
                done_at.append(done)
            else:
                kind = f"http {status}: {head.decode('utf-8', 'replace').strip()}"
                errors[kind] = errors.get(kind, 0) + 1
    for fail in failures:
        for kind in fail:
            errors[kind] = errors.get(kind, 0) + 1
    results.put({"proc": proc, "sent_at": sent_at.tobytes(), "done_at": done_at.tobytes(), "errors": errors,
                 "answered": sum(len(r) for r in records), "cpu": cpu_used})


# ---------------------------------------------------------------------------------------------
# Parent: the scratch database, the servers, the phases
# ---------------------------------------------------------------------------------------------
class ScratchDatabase:
    """The Postgres database the benchmark fills: must start empty, is left empty."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = urlsplit(url).path.lstrip("/")
        self.admin_url = url  # webhook_load's helpers look backends up by name through this URL
        import sqlalchemy as sa

        self.engine = sa.create_engine(url, pool_size=2)

    def tables(self) -> list[str]:
        from wx_service.app import all_metadata

        return [t.name for t in reversed(all_metadata().sorted_tables)]

    def non_empty(self) -> list[str]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            return [t for t in self.tables()
                    if t in present and conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar()]

    def empty(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            names = [t for t in self.tables() if t in present]
            if names:
                conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))

    def backend_pids(self) -> list[int]:
        import psycopg

        try:
            with psycopg.connect(_plain_pg(self.url), autocommit=True) as conn:
                rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                    (self.name,)).fetchall()
            return [r[0] for r in rows]
        except Exception:
            return []


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def seed(db_url: str, members: int, batches: dict[str, int],
         rng: random.Random) -> dict[str, list[tuple[str, int, str]]]:
    """Members with mini-program openids, then each batch's orders: {batch: [(out_trade_no, fen, openid)]}.

    The orders carry no member id: the notification's payer openid finds the member, as it does
    for a JSAPI order placed before the shopper's identity was known."""
    from config import load_settings
    from members import identity
    from payments import service
    from wx_service.app import create_app

    settings = load_settings({"APP_ENV": "test", "DATABASE_URL": db_url, "REDIS_URL": "memory://",
                              "LOG_LEVEL": "WARNING"}, WECHAT_EMULATOR=False)
    app = create_app(settings)
    db = app.extensions["wx"].db
    openids = [f"oPayBench{n:019d}" for n in range(members)]  # 28 characters, like a real openid
    with app.app_context():
        for start in range(0, members, 500):
            with db.unit_of_work():
                for openid in openids[start:start + 500]:
                    identity.resolve_member("mp", openid)
        out: dict[str, list[tuple[str, int, str]]] = {}
        run = time.strftime("%m%d%H%M%S")
        for batch, count in batches.items():
            orders = [(f"PB{run}{batch}{n:06d}", rng.randrange(1_000, 200_000), rng.choice(openids))
                      for n in range(count)]
            for start in range(0, count, 500):
                with db.unit_of_work():
                    for out_trade_no, fen, _openid in orders[start:start + 500]:
                        service.create_order(out_trade_no, "jsapi", fen, APPID, description="bench")
            out[batch] = orders
    db.dispose()
    return out


def db_snapshot(db: ScratchDatabase) -> dict[str, Any]:
    """What a duplicate notification must not change."""
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        q = lambda sql: conn.execute(sa.text(sql)).scalar()  # noqa: E731
        return {"pay_transactions": q("SELECT count(*) FROM pay_transactions"),
                "points_entries": q("SELECT count(*) FROM points_ledger"),
                "last_points_entry": q("SELECT max(id) FROM points_ledger"),
                "points_total": q("SELECT coalesce(sum(points_balance), 0) FROM members"),
                "spend_rows": q("SELECT count(*) FROM member_spend"),
                "paid_orders": q("SELECT count(*) FROM pay_orders WHERE state = 'PAID'")}


def db_check(db: ScratchDatabase, orders: list[tuple[str, int, str]]) -> list[str]:
    """Everything the notifications should have done, exactly once; returns the problems found."""
    import sqlalchemy as sa

    problems: list[str] = []
    expected = {out_trade_no: openid for out_trade_no, _fen, openid in orders}
    with db.engine.connect() as conn:
        member_of = dict(conn.execute(sa.text(
            "SELECT openid, member_id FROM member_identities WHERE kind = 'mp'")).all())
        rows = conn.execute(sa.text(
            "SELECT o.out_trade_no, o.state, o.paid_at IS NOT NULL, o.payer_openid, o.points_member_id,"
            " (SELECT count(*) FROM pay_transactions t WHERE t.order_id = o.id),"
            " (SELECT count(*) FROM points_ledger p WHERE p.ref_key = o.out_trade_no AND p.reason = 'payment'"
            "    AND p.delta > 0 AND p.member_id = o.points_member_id),"
            " (SELECT count(*) FROM points_ledger p WHERE p.ref_key = o.out_trade_no)"
            " FROM pay_orders o")).all()
        seen = {r[0] for r in rows}
        if missing := set(expected) - seen:
            problems.append(f"{len(missing)} orders missing from the database")
        tally = {"not PAID": 0, "no paid_at": 0, "payer openid not the notification's": 0,
                 "points not on the payer's member": 0, "not exactly one pay_transactions row": 0,
                 "not exactly one payment points entry": 0}
        for out_trade_no, state, paid, payer, points_member, transactions, payment_entries, entries in rows:
            if out_trade_no not in expected:
                continue
            openid = expected[out_trade_no]
            tally["not PAID"] += state != "PAID"
            tally["no paid_at"] += not paid
            tally["payer openid not the notification's"] += payer != openid
            tally["points not on the payer's member"] += points_member is None or points_member != member_of.get(openid)
            tally["not exactly one pay_transactions row"] += transactions != 1
            tally["not exactly one payment points entry"] += not (payment_entries == entries == 1)
        problems += [f"{n} orders: {what}" for what, n in tally.items() if n]
        bad_members = conn.execute(sa.text(
            "SELECT count(*) FROM members m WHERE m.points_balance <> coalesce("
            " (SELECT sum(delta) FROM points_ledger p WHERE p.member_id = m.id), 0)")).scalar()
        if bad_members:
            problems.append(f"{bad_members} members whose balance is not the sum of their ledger")
    return problems


class Runner:
    def __init__(self, args: argparse.Namespace, platform_key: Any, serial: str) -> None:
        self.args = args
        self.ctx = mp.get_context("fork")
        self.platform_key = platform_key
        self.serial = serial

    def run_phase(self, server: Server, conns: int, payments: list[Payment]) -> dict[str, Any]:
        """Send every payment's notification once (signed now) over `conns` connections; measure."""
        global _REQUESTS
        signing_started = time.monotonic()
        _REQUESTS = [(p.body, signed_headers(self.platform_key, self.serial, p.body)) for p in payments]
        signing_s = time.monotonic() - signing_started
        nprocs = min(self.args.load_procs, conns)
        per_proc_threads = split(conns, nprocs)
        workers = server.worker_pids()
        quotas: list[list[int]] = []
        if self.args.balance and len(workers) > 1:
            quotas = [[0] * len(workers) for _ in range(nprocs)]
            g = 0
            for k, n in enumerate(per_proc_threads):
                for _ in range(n):
                    quotas[k][g % len(workers)] += 1
                    g += 1
        spec = PhaseSpec(name=f"closed-{conns}", mode="closed", port=server.port, duration=0.0,
                         threads_per_proc=per_proc_threads, bodies_per_proc=0, msg_id_base=0,
                         worker_pids=workers, quotas=quotas)
        # Each process takes every nprocs-th request, so the processes finish together.
        shares = [list(range(k, len(payments), nprocs)) for k in range(nprocs)]
        background, waited = wait_for_quiet(server.pids() + server.helper_pids(), self.args.quiet_threshold,
                                            self.args.quiet_wait)
        if waited > 1.5:
            log(f"  (waited {waited:.0f} s for other processes to quiet down; they use {background:.2f} cores)")
        if time.time() - int(_REQUESTS[0][1]["Wechatpay-Timestamp"]) > 0:  # signed SIGN_AHEAD s ago or more
            raise RuntimeError("the phase's notifications were signed too long before it could start; "
                               "lower --quiet-wait")
        ready = self.ctx.Barrier(nprocs + 1)
        go = self.ctx.Event()
        results = self.ctx.Queue()
        procs = [self.ctx.Process(target=load_process, args=(k, spec, shares[k], ready, go, results), daemon=True)
                 for k in range(nprocs)]
        for p in procs:
            p.start()
        try:
            ready.wait(timeout=120)  # connections open in every load process
            time.sleep(0.1)  # let the workers accept the new connections
            spread = connections_per_worker(server.port, workers)
            server_pids, helper_pids = server.pids(), server.helper_pids()
            cpu_server0, cpu_helpers0 = _cpu_by_pid(server_pids), _cpu_by_pid(helper_pids)
            machine0 = _machine_cpu()
            t0 = time.monotonic()
            go.set()
            parts = []
            deadline = t0 + len(payments) * REQUEST_TIMEOUT / max(1, conns) + 120
            while len(parts) < nprocs:
                try:
                    parts.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
                except queue.Empty:
                    raise RuntimeError("load processes did not report within the phase's time bound") from None
            cpu_server1, cpu_helpers1 = _cpu_by_pid(server_pids), _cpu_by_pid(helper_pids)
            machine1 = _machine_cpu()
            measured = time.monotonic() - t0
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
        sent = list(itertools.chain.from_iterable(array("d", part["sent_at"]) for part in parts))
        done = list(itertools.chain.from_iterable(array("d", part["done_at"]) for part in parts))
        lat = sorted(d - s for s, d in zip(sent, done))
        errors: dict[str, int] = {}
        for part in parts:
            for kind, n in part["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        elapsed = (max(done) - t0) if done else float("nan")
        ok = len(done)
        ncpu = os.cpu_count() or 1
        window = max(elapsed, 1e-9)
        busy = _busy_cores(machine0, machine1)
        server_cpu = _cpu_delta(cpu_server0, cpu_server1)
        helper_cpu = _cpu_delta(cpu_helpers0, cpu_helpers1)
        loadgen_cpu = sum(part["cpu"] for part in parts)
        # The machine's busy cores are averaged over `measured` (until the last report came in).
        other_cores = max(0.0, busy - (server_cpu + helper_cpu + loadgen_cpu) / measured)
        return {
            "connections": conns, "notifications": len(payments), "ok_204": ok,
            "errors": len(payments) - ok,  # answered otherwise, failed, or never answered
            "error_kinds": errors, "elapsed_s": round(elapsed, 3),
            "rate_per_s": round(ok / window, 1) if ok else 0.0,
            "latency_ms": {f"p{p:g}": round(percentile(lat, p) * 1000, 2) for p in (50, 90, 99)}
            | {"max": round(lat[-1] * 1000, 2) if lat else float("nan")},
            "connections_per_worker": spread,
            "signing_s_before_the_clock": round(signing_s, 2),
            "background_cores_before": round(background, 2),
            "noisy": other_cores > self.args.quiet_threshold or background > self.args.quiet_threshold,
            "cpu": {"server_ms_per_notification": round(server_cpu * 1000 / ok, 3) if ok else None,
                    "postgres_redis_ms_per_notification": round(helper_cpu * 1000 / ok, 3) if ok else None,
                    "server_cores": round(server_cpu / window, 2),
                    "postgres_redis_cores": round(helper_cpu / window, 2),
                    "loadgen_cores": round(loadgen_cpu / window, 2),
                    "other_processes_cores": round(other_cores, 2),
                    "machine_busy_pct": round(busy / ncpu * 100, 1), "cores": ncpu},
        }


def _line(label: str, res: dict[str, Any]) -> str:
    lat, cpu = res["latency_ms"], res["cpu"]
    return (f"  {label:<10} {res['connections']:>3} conns: {res['rate_per_s']:8.1f} /s, p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, {res['errors']} errors, server CPU {cpu['server_ms_per_notification']} ms/notif, "
            f"pg+redis {cpu['postgres_redis_ms_per_notification']} ms/notif, others {cpu['other_processes_cores']} "
            f"cores; conns/worker {res['connections_per_worker']}" + ("  [NOISY]" if res["noisy"] else ""))


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


COLUMNS = (("baseline", "baseline"), ("full", "full"), ("duplicates", "full, dup"))


def render_table(levels: list[dict[str, Any]], db_lines: list[str]) -> str:
    rows: list[tuple[str, list[str]]] = []
    for level in levels:
        n = level["connections"]
        rows.append((f"{n} connections: notifications/s",
                     [_fmt(level[k]["rate_per_s"]) + ("*" if level[k]["noisy"] else "") for k, _ in COLUMNS]))
        rows.append(("  latency p50 / p99 (ms)",
                     [f"{_fmt(level[k]['latency_ms']['p50'], 1)} / {_fmt(level[k]['latency_ms']['p99'], 1)}"
                      for k, _ in COLUMNS]))
        rows.append(("  server CPU ms/notification",
                     [_fmt(level[k]["cpu"]["server_ms_per_notification"], 2) for k, _ in COLUMNS]))
        rows.append(("  postgres+redis CPU ms/notification",
                     [_fmt(level[k]["cpu"]["postgres_redis_ms_per_notification"], 2) for k, _ in COLUMNS]))
        rows.append(("  answers other than 204", [str(level[k]["errors"]) for k, _ in COLUMNS]))
    w0 = max(len(name) for name, _ in rows) + 2
    w = 16
    lines = ["".ljust(w0) + "".join(title.rjust(w) for _, title in COLUMNS), "-" * (w0 + w * len(COLUMNS))]
    lines += [name.ljust(w0) + "".join(v.rjust(w) for v in vals) for name, vals in rows]
    lines.append("(* = phase disturbed by other processes on the machine)")
    lines.append("")
    for level in levels:
        b, f, d = (level[k]["rate_per_s"] for k, _ in COLUMNS)
        if b:
            lines.append(f"{level['connections']:>3} connections: full / baseline = {f / b:.2f}, "
                         f"duplicates / baseline = {d / b:.2f}")
    best = {k: max(lv[k]["rate_per_s"] for lv in levels) for k, _ in COLUMNS}
    lines.append(f"best of the levels (notifications/s): baseline {best['baseline']:.1f}, full {best['full']:.1f}, "
                 f"duplicates {best['duplicates']:.1f}")
    lines += db_lines
    return "\n".join(lines)


def app_env(args: argparse.Namespace, keys: dict[str, str]) -> dict[str, str]:
    """The real app's environment: WeChat Pay on with the throw-away keys; nothing calls WeChat."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("WXPAY_", "EMULATOR_")):
            del env[name]
    env.update(APP_ENV="development", WECHAT_EMULATOR="false", DATABASE_URL=args.database_url,
               REDIS_URL=args.redis_url, JOB_QUEUE="rq", LOG_LEVEL="WARNING", LOG_FORMAT="json",
               WECHAT_APPID=DEMO_APPID, WECHAT_SECRET=DEMO_SECRET, WECHAT_TOKEN=DEMO_TOKEN,
               WECHAT_AES_KEY=DEMO_AES_KEY, WECHAT_ORIGINAL_ID=DEMO_ORIGINAL_ID,
               WXPAY_API_BASE="http://127.0.0.1:9", WXPAY_NOTIFY_URL_BASE="http://127.0.0.1",
               PYTHONDONTWRITEBYTECODE="1")
    env.update({k: v for k, v in keys.items() if k.startswith("WXPAY_")})
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=2000,
                    help="orders (notifications) per concurrency level (default 2000)")
    ap.add_argument("--members", type=int, default=500, help="members the payers are drawn from (default 500)")
    ap.add_argument("--concurrency", default="4,8,16", help="connection counts, comma separated (default 4,8,16)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                    help="a scratch Postgres database (default: $DATABASE_URL); must be empty unless --wipe")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""),
                    help="a scratch Redis db for the real app (default: $REDIS_URL); must be empty unless --wipe")
    ap.add_argument("--wipe", action="store_true", help="empty the database and the Redis db first")
    ap.add_argument("--keep-data", action="store_true", help="leave the orders, members and points behind")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="gthread threads per worker (default 4)")
    ap.add_argument("--load-procs", type=int, default=2, help="load generator processes (default 2)")
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="keep connections where the kernel puts them instead of spreading them over workers")
    ap.add_argument("--quiet-threshold", type=float, default=0.2,
                    help="cores other processes may use before a phase counts as noisy (default 0.2)")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="seconds to wait before each phase for other processes to go quiet (default 10)")
    ap.add_argument("--seed", type=int, default=7, help="random seed for amounts and payers")
    ap.add_argument("--output", default=str(RESULTS / "pay_notify_load.json"))
    args = ap.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if not args.database_url:
        ap.error("no database: pass --database-url postgresql+psycopg://… (or set DATABASE_URL)")
    if not args.database_url.startswith("postgresql"):
        ap.error(f"{args.database_url.split(':', 1)[0]} is not supported: the benchmark needs Postgres "
                 "(with SQLite every writer queues for one database lock, so the figure would measure that)")
    if not args.redis_url or not args.redis_url.startswith(("redis://", "rediss://")):
        ap.error("no Redis: pass --redis-url redis://… (or set REDIS_URL); "
                 "memory:// cannot be shared by gunicorn workers")
    if args.orders < 1 or args.members < 1 or not args.concurrency or min(args.concurrency) < 1:
        ap.error("--orders, --members and every --concurrency level must be positive")

    RESULTS.mkdir(parents=True, exist_ok=True)
    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    started = time.time()
    db = ScratchDatabase(args.database_url)
    redis = redis_client(args.redis_url)
    busy, keys_held = db.non_empty(), redis.dbsize()  # before migrating: never touch a database in use
    if (busy or keys_held) and not args.wipe:
        found = ([f"the database has rows in {', '.join(busy[:6])}{' …' if len(busy) > 6 else ''}"] if busy else []) \
            + ([f"the Redis db holds {keys_held} keys"] if keys_held else [])
        print(f"refusing: {' and '.join(found)}. The benchmark needs a scratch database and Redis db (it empties "
              "them at the end); pass --wipe to empty them first.", file=sys.stderr)
        return 2
    from wx_service.ground.db import upgrade_database

    upgrade_database(args.database_url)
    db.empty()
    redis.flushdb()
    rng = random.Random(args.seed)
    tmp = tempfile.TemporaryDirectory(prefix="paybench-")
    servers: list[Server] = []
    levels: list[dict[str, Any]] = []
    db_lines: list[str] = []
    problems: list[str] = []
    try:
        keys = ensure_demo_merchant(tmp.name)
        platform_cert = load_platform_cert(keys["EMULATOR_PAY_KEY_FILE"])
        apiv3_key = Path(keys["WXPAY_APIV3_KEY_FILE"]).read_bytes().strip()
        batches = {"W": WARMUP_ORDERS} | {f"C{n}": args.orders for n in args.concurrency}
        log(f"seeding {args.members} members and {sum(batches.values())} orders …")
        orders = seed(args.database_url, args.members, batches, rng)
        payments: dict[str, list[Payment]] = {}
        for batch, rows in orders.items():
            payments[batch] = []
            for out_trade_no, fen, openid in rows:
                notification_id = str(uuid.uuid4())  # kept by the duplicate round, as WeChat's retries keep it
                payments[batch].append(Payment(out_trade_no, fen, openid, notification_id,
                                               payment_body(apiv3_key, out_trade_no, fen, openid, notification_id)))
        env = app_env(args, keys)
        baseline = Server("pay-baseline", "bench.pay_baseline_app:app", env, args)
        full = Server("pay-full", "wsgi:app", env, args, database=db)
        servers = [baseline, full]
        for server in servers:
            server.start()
            log(f"started {server.label}: gunicorn {' '.join(server.cmd[1:])}")
        runner = Runner(args, platform_cert.key, platform_cert.serial)
        warm_errors = 0
        for server in servers:
            warm = runner.run_phase(server, 8, payments["W"])
            log(f"  {server.label:<12} warm-up: {warm['rate_per_s']} /s, {warm['errors']} errors")
            if warm["errors"]:
                log(f"    {warm['error_kinds']}")
            warm_errors += warm["errors"]
        for index, n in enumerate(args.concurrency):
            batch = payments[f"C{n}"]
            level: dict[str, Any] = {"connections": n}
            order = [("baseline", baseline), ("full", full)]
            for label, server in (order if index % 2 == 0 else order[::-1]):
                level[label] = runner.run_phase(server, n, batch)
                log(_line(label, level[label]))
            levels.append(level)
        all_orders = [o for rows in orders.values() for o in rows]
        paid_problems = db_check(db, all_orders)
        before = db_snapshot(db)
        for level in levels:
            n = level["connections"]
            level["duplicates"] = runner.run_phase(full, n, payments[f"C{n}"])
            log(_line("duplicates", level["duplicates"]))
        after = db_snapshot(db)
        dup_problems = [f"after the duplicates: {p}" for p in db_check(db, all_orders)]
        if after != before:
            dup_problems.append(f"the duplicate notifications changed the database: {before} -> {after}")
        errors = warm_errors + sum(lv[k]["errors"] for lv in levels for k, _ in COLUMNS)
        problems = paid_problems + dup_problems
        if errors:
            problems.append(f"{errors} answers other than 204 (see error_kinds in the JSON)")
        db_lines = ["", f"database check ({len(all_orders)} orders incl. {WARMUP_ORDERS} warm-up, "
                        f"{args.members} members):",
                    f"  orders PAID: {before['paid_orders']}; pay_transactions rows: {before['pay_transactions']}; "
                    f"points ledger entries: {before['points_entries']}",
                    "  each order PAID once, with one transaction row and one payment points entry on the payer's "
                    "member; every balance = sum of its ledger: " + ("NO" if paid_problems else "yes"),
                    "  the duplicate rounds changed nothing: " + ("NO" if dup_problems else "yes")]
        if problems:
            db_lines += ["", "FAILED:"] + [f"  {p}" for p in problems]
    finally:
        _stop_all()
        if not args.keep_data:
            with contextlib.suppress(Exception):
                db.empty()
            with contextlib.suppress(Exception):
                redis.flushdb()
        db.engine.dispose()
        tmp.cleanup()

    table = render_table(levels, db_lines)
    print(table)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except Exception:
        commit = ""
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "git_commit": commit,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("database_url", "redis_url")},
        "servers": {s.label: " ".join(s.cmd[1:]) for s in servers},
        "levels": levels,
        "problems": problems,
        "table": table,
    }
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"results written to {args.output}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
