"""Load benchmark of POST /wechat: the full pipeline against a minimal Flask + wechatpy baseline.

    .venv/bin/python bench/webhook_load.py [--duration S] [--workers N]

It starts three gunicorn servers on free loopback ports, all with the same worker count and
type: bench/baseline_app.py, the real app with LOG_LEVEL=WARNING, and the real app with
LOG_LEVEL=INFO (skip it with --no-info-run). The servers then take turns, phase by phase, so
that drift in what the shared machine delivers biases none of them:

  1. warm-up for a few seconds (this also gives a rough rate estimate that sizes the body pool);
  2. closed loop: N keep-alive connections, each sending its next push as soon as the previous
     answer arrived, at several concurrency levels; the best level is the server's peak;
  3. open loop at 80% of THAT server's peak: pushes are due on a fixed schedule and latency is
     measured from the due time, so a stalled server is charged for the pushes it delayed
     (no coordinated omission); then the same at lower fractions (--sweep);
  4. every answer is verified after its phase, outside the timed window: HTTP 200, a safe-mode
     envelope whose MsgSignature holds for the request's timestamp and nonce, and a decrypted
     text reply addressed to the push's sender. Anything else is an error.

Connections are spread evenly over the gunicorn workers (see dial()). Before each phase the
script waits for other processes on the machine to go quiet, and it reports the CPU used by the
server, by Postgres and Redis, by the load generator and by everything else.

Every request body is a safe-mode encrypted text push with its own MsgId and nonce, generated
before the timed window by the load processes themselves. The real app runs against a fresh
Postgres database (created, migrated, and dropped by this script) and Redis db 14 (flushed).

Results: a table on stdout and bench/results/webhook_load.json; gunicorn logs in bench/results/.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from config.settings import (  # noqa: E402
    DEMO_AES_KEY,
    DEMO_APPID,
    DEMO_ORIGINAL_ID,
    DEMO_SECRET,
    DEMO_TOKEN,
)
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap  # noqa: E402
from wx_service.edges.emulator.state import EmulatorState  # noqa: E402
from wx_service.ground.protocol.crypto import MessageCrypto  # noqa: E402
from wx_service.ground.protocol.signature import sign  # noqa: E402

RESULTS = REPO / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 10.0  # seconds; a request taking longer is an error
DRAIN_GRACE = 10.0  # seconds an open-loop phase may run past its end to send pushes already due
OPENID_POOL = 2000  # distinct shoppers the pushes come from
CONTENT = "你好"  # no keyword matches: the default help handler answers, no job is queued
HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}

_REPLY_RE = re.compile(
    rb"^<xml>\s*<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>\s*"
    rb"<MsgSignature><!\[CDATA\[([0-9a-f]{40})\]\]></MsgSignature>\s*"
    rb"<TimeStamp>(\d+)</TimeStamp>\s*<Nonce><!\[CDATA\[([^\]]*)\]\]></Nonce>\s*</xml>\s*$")


# ---------------------------------------------------------------------------------------------
# Request bodies and response checks (run inside the load processes)
# ---------------------------------------------------------------------------------------------
def _state() -> EmulatorState:
    return EmulatorState(DEMO_APPID, DEMO_SECRET, DEMO_TOKEN, DEMO_AES_KEY, DEMO_ORIGINAL_ID, 5.0)


def openid_for(n: int) -> str:
    return "oBench" + format(n % OPENID_POOL, "022d")  # 28 characters, like a real openid


def make_requests(count: int, msg_id_base: int, nonce_prefix: str) -> list[tuple[str, bytes, str, str, str]]:
    """`count` safe-mode text pushes: (path with query, body, timestamp, nonce, openid) each."""
    state = _state()
    timestamp = str(int(time.time()))
    out = []
    for i in range(count):
        openid = openid_for(msg_id_base + i)
        nonce = f"{nonce_prefix}{i}"
        fields = [("ToUserName", DEMO_ORIGINAL_ID), ("FromUserName", openid), ("CreateTime", int(timestamp)),
                  ("MsgType", "text"), ("Content", CONTENT), ("MsgId", msg_id_base + i)]
        query, body = sign_and_wrap(state, build_push_xml(fields), "safe", timestamp, nonce)
        out.append(("/wechat?" + urlencode(query), body, timestamp, nonce, openid))
    return out


def check_reply(crypto: MessageCrypto, status: int, ctype: str, body: bytes,
                timestamp: str, nonce: str, openid: str, desk: bool = False) -> str | None:
    """None when the answer is a valid encrypted text reply to this push, else what is wrong.

    A push from a shopper whose customer-service conversation is open (`desk`, full app only) goes
    to the desk, which only wakes the console: the right answer is HTTP 200 with `success`."""
    if status != 200:
        return f"http {status}"
    if desk:
        return None if body == b"success" else "desk push not answered `success`"
    if "xml" not in ctype:
        return "content type " + (ctype or "missing")
    m = _REPLY_RE.match(body)
    if not m:
        return "not a safe-mode envelope"
    encrypt, signature, ts, rnonce = (g.decode() for g in m.groups())
    if ts != timestamp or rnonce != nonce:
        return "envelope timestamp/nonce differ from the request's"
    if sign(DEMO_TOKEN, ts, rnonce, encrypt) != signature:
        return "bad MsgSignature"
    try:
        plain = crypto.decrypt(encrypt)
    except Exception as exc:  # any failure to decrypt is a wrong answer
        return f"decrypt failed: {type(exc).__name__}"
    if f"<ToUserName><![CDATA[{openid}]]></ToUserName>".encode() not in plain:
        return "reply not addressed to the sender"
    if b"<MsgType><![CDATA[text]]></MsgType>" not in plain or b"<Content><![CDATA[" not in plain:
        return "not a text reply"
    return None


# ---------------------------------------------------------------------------------------------
# Load process
# ---------------------------------------------------------------------------------------------
@dataclass
class PhaseSpec:
    name: str
    mode: str  # "closed" | "open" | "warmup"
    port: int
    duration: float
    threads_per_proc: list[int]  # connections (threads) in each load process
    bodies_per_proc: int
    msg_id_base: int
    rate: float = 0.0  # open loop: total pushes per second across all processes
    nonce_prefix: str = ""
    # Per load process, how many of its connections each gunicorn worker should hold (empty: as
    # the kernel hands them out).
    worker_pids: list[int] = field(default_factory=list)
    quotas: list[list[int]] = field(default_factory=list)
    # Shopper numbers (openid_for) with an open customer-service conversation on this server: their
    # pushes must be answered `success`. Empty for the baseline, which knows nothing of the desk.
    desk_indexes: frozenset[int] = frozenset()


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) each live process has used so far."""
    found = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                parts = fh.read().rsplit(")", 1)[1].split()
            found[pid] = (int(parts[11]) + int(parts[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return found


def _cpu_of(pids: list[int]) -> float:
    return sum(_cpu_by_pid(pids).values())


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings by the processes alive at both (exited ones are not counted)."""
    return sum(after[pid] - before[pid] for pid in before if pid in after)


def _machine_cpu() -> tuple[float, float]:
    """(all ticks, idle ticks) of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as fh:
        vals = [int(v) for v in fh.readline().split()[1:9]]  # user..steal; guest is inside user
    idle = vals[3] + vals[4]
    return float(sum(vals)), float(idle)


def _busy_cores(m0: tuple[float, float], m1: tuple[float, float]) -> float:
    total = m1[0] - m0[0]
    return (1.0 - (m1[1] - m0[1]) / total) * (os.cpu_count() or 1) if total else 0.0


def _pids_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() == name:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def connections_per_worker(port: int, workers: list[int]) -> list[int]:
    """How many established connections to `port` each worker process holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                        inodes.add(cols[9])
        except OSError:
            pass
    counts = []
    for pid in workers:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        n += 1
        except OSError:
            pass
        counts.append(n)
    return counts


def wait_for_quiet(own_pids: list[int], threshold: float, max_wait: float) -> tuple[float, float]:
    """Wait (at most max_wait s) until processes other than ours use under `threshold` cores.

    The machine is shared with whatever else runs on it (test suites, browsers); a phase measured
    while they run says more about them than about the server. Returns (background cores seen
    last, seconds waited)."""
    started = time.monotonic()
    while True:
        m0, c0 = _machine_cpu(), _cpu_of(own_pids)
        time.sleep(1.0)
        m1, c1 = _machine_cpu(), _cpu_of(own_pids)
        background = max(0.0, _busy_cores(m0, m1) - (c1 - c0))
        waited = time.monotonic() - started
        if background < threshold or waited >= max_wait:
            return background, waited


def _accepting_worker(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """Index of the worker that accepted the connection from `client_port`, or None (not yet)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                if (int(cols[1].rsplit(":", 1)[1], 16) == server_port
                        and int(cols[2].rsplit(":", 1)[1], 16) == client_port and cols[9] != "0"):
                    inode = cols[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for index, pid in enumerate(workers):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return index
    return None


def dial(spec: PhaseSpec, proc: int, count: int) -> list[http.client.HTTPConnection]:
    """Open `count` keep-alive connections, spread over the workers as spec.quotas asks.

    The kernel hands a new connection to whichever worker accepts first, so a handful of long
    keep-alive connections often lands mostly on one worker, which then hits its GIL while the
    other idles, and the figures swing from run to run. Re-dialling until each worker holds its
    share makes runs comparable; the spread is reported with each phase."""
    conns: list[http.client.HTTPConnection] = []
    quota = list(spec.quotas[proc]) if spec.quotas else []
    attempts = 0
    while len(conns) < count:
        conn = http.client.HTTPConnection(HOST, spec.port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        attempts += 1
        if not quota or attempts > 50 * count:
            conns.append(conn)  # no balancing asked, or it is not working out: take what comes
            continue
        client_port = conn.sock.getsockname()[1]
        owner = None
        deadline = time.monotonic() + 1.0
        while owner is None and time.monotonic() < deadline:
            owner = _accepting_worker(spec.port, client_port, spec.worker_pids)
            if owner is None:
                time.sleep(0.002)
        if owner is None or quota[owner] > 0:
            if owner is not None:
                quota[owner] -= 1
            conns.append(conn)
        else:
            conn.close()
    return conns


def load_process(proc: int, nprocs: int, spec: PhaseSpec, ready: Any, start_at: Any, go: Any,
                 results: Any) -> None:
    """One load process: build bodies, connect, wait for the common start, drive, verify, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    nthreads = spec.threads_per_proc[proc]
    reqs = make_requests(spec.bodies_per_proc, spec.msg_id_base + proc * 10**7, f"{spec.nonce_prefix}p{proc}n")
    conns = dial(spec, proc, nthreads)
    ready.wait()
    go.wait()
    t0 = start_at.value
    end = t0 + spec.duration
    counter = itertools.count()
    # Per thread: (request index, status, content type, body, t_send_or_due, t_done) and errors.
    records: list[list[tuple]] = [[] for _ in range(nthreads)]
    failures: list[list[tuple[int, float, float, str]]] = [[] for _ in range(nthreads)]
    exhausted = threading.Event()
    period = nprocs / spec.rate if spec.rate else 0.0
    offset = proc / spec.rate if spec.rate else 0.0
    dropped = [0] * nthreads

    def exchange(t: int, i: int) -> tuple[int, str, bytes]:
        path, body = reqs[i][0], reqs[i][1]
        conn = conns[t]
        conn.request("POST", path, body, HEADERS)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheader("Content-Type", ""), data

    def reconnect(t: int) -> None:
        with contextlib.suppress(Exception):
            conns[t].close()
        conns[t] = http.client.HTTPConnection(HOST, spec.port, timeout=REQUEST_TIMEOUT)

    def closed(t: int) -> None:
        rec, fail = records[t], failures[t]
        now = time.monotonic
        while True:
            start = now()
            if start >= end:
                return
            i = next(counter)
            if i >= len(reqs):
                exhausted.set()
                return
            try:
                status, ctype, data = exchange(t, i)
            except Exception as exc:  # every failed exchange is an error of the phase
                fail.append((i, start, now(), type(exc).__name__))
                reconnect(t)
                continue
            rec.append((i, status, ctype, data, start, now(), start))

    def opened(t: int) -> None:
        rec, fail = records[t], failures[t]
        now = time.monotonic
        while True:
            i = next(counter)
            due = t0 + offset + i * period
            if due >= end:
                return
            if i >= len(reqs):
                exhausted.set()
                return
            wait = due - now()
            if wait > 0:
                time.sleep(wait)
            elif now() > end + DRAIN_GRACE:
                dropped[t] += 1  # far behind schedule: give up on the rest of the backlog
                continue
            sent = now()
            try:
                status, ctype, data = exchange(t, i)
            except Exception as exc:
                fail.append((i, due, now(), type(exc).__name__))
                reconnect(t)
                continue
            rec.append((i, status, ctype, data, due, now(), sent))

    target = opened if spec.mode == "open" else closed
    if t0 > time.monotonic():
        time.sleep(t0 - time.monotonic())
    cpu0 = time.process_time()
    threads = [threading.Thread(target=target, args=(t,), daemon=True) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cpu_used = time.process_time() - cpu0
    for conn in conns:
        with contextlib.suppress(Exception):
            conn.close()

    # Verify every answer, outside the timed window.
    crypto = MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID)
    ok_done = array("d")
    ok_lat = array("d")
    ok_svc = array("d")
    errors: dict[str, int] = {}
    desk_openids = {openid_for(n) for n in spec.desk_indexes}
    desk_ok = 0
    for rec in records:
        for i, status, ctype, data, began, done, sent in rec:
            _, _, ts, nonce, openid = reqs[i]
            desk = openid in desk_openids
            problem = check_reply(crypto, status, ctype, data, ts, nonce, openid, desk)
            desk_ok += desk and problem is None
            if problem is None:
                ok_done.append(done - t0)
                ok_lat.append(done - began)
                ok_svc.append(done - sent)
            else:
                errors[problem] = errors.get(problem, 0) + 1
    for fail in failures:
        for _i, _began, _done, kind in fail:
            errors[kind] = errors.get(kind, 0) + 1
    if sum(dropped):
        errors["not sent (schedule overrun)"] = sum(dropped)
    results.put({"proc": proc, "ok_done": ok_done.tobytes(), "ok_lat": ok_lat.tobytes(), "ok_svc": ok_svc.tobytes(),
                 "errors": errors, "desk_ok": desk_ok,
                 "sent": sum(len(r) for r in records) + sum(len(f) for f in failures),
                 "exhausted": exhausted.is_set(), "cpu": cpu_used})


# ---------------------------------------------------------------------------------------------
# Parent: phases, servers, database
# ---------------------------------------------------------------------------------------------
def percentile(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1)
    return sorted_vals[k]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ctx = mp.get_context("fork")
        self.msg_base = int(time.time()) * 10**9  # MsgIds unique across runs of this script
        self.phase_no = 0

    def run_phase(self, server: "Server", mode: str, conns: int, duration: float, rate: float = 0.0,
                  bodies: int = 0) -> dict[str, Any]:
        nprocs = min(self.args.load_procs, conns)
        per_proc_threads = split(conns, nprocs)
        if mode == "open":
            per_proc_bodies = math.ceil(rate * duration / nprocs) + 1
        else:
            per_proc_bodies = math.ceil(bodies / nprocs)
        self.phase_no += 1
        workers = server.worker_pids()
        quotas: list[list[int]] = []
        if self.args.balance and len(workers) > 1:
            # Connection g of the phase belongs with worker g % W; count each process's share.
            quotas = [[0] * len(workers) for _ in range(nprocs)]
            g = 0
            for k, n in enumerate(per_proc_threads):
                for _ in range(n):
                    quotas[k][g % len(workers)] += 1
                    g += 1
        spec = PhaseSpec(name=f"{mode}-{conns}", mode=mode, port=server.port, duration=duration,
                         threads_per_proc=per_proc_threads, bodies_per_proc=per_proc_bodies,
                         msg_id_base=self.msg_base + self.phase_no * 10**8, rate=rate,
                         nonce_prefix=f"{self.msg_base // 10**9 % 10**6}x{self.phase_no}",
                         worker_pids=workers, quotas=quotas, desk_indexes=server.desk_indexes)
        background, waited = wait_for_quiet(server.pids() + server.helper_pids(), self.args.quiet_threshold,
                                            self.args.quiet_wait)
        if waited > 1.5:
            log(f"  (waited {waited:.0f} s for other processes to quiet down; they use {background:.2f} cores)")
        ready = self.ctx.Barrier(nprocs + 1)
        go = self.ctx.Event()
        start_at = self.ctx.Value("d", 0.0)
        results = self.ctx.Queue()
        procs = [self.ctx.Process(target=load_process, args=(k, nprocs, spec, ready, start_at, go, results),
                                  daemon=True) for k in range(nprocs)]
        for p in procs:
            p.start()
        try:
            ready.wait(timeout=120)  # bodies built and connections open in every load process
            server_pids = server.pids()
            time.sleep(0.1)  # let the workers accept the new connections
            spread = connections_per_worker(server.port, workers)
            start_at.value = time.monotonic() + 0.05
            helper_pids = server.helper_pids()
            cpu_server0, cpu_helpers0 = _cpu_by_pid(server_pids), _cpu_by_pid(helper_pids)
            machine0 = _machine_cpu()
            go.set()
            time.sleep(max(0.0, start_at.value + duration - time.monotonic()))
            cpu_server1, cpu_helpers1 = _cpu_by_pid(server_pids), _cpu_by_pid(helper_pids)
            machine1 = _machine_cpu()
            parts = []
            deadline = time.monotonic() + duration + DRAIN_GRACE + REQUEST_TIMEOUT + 120
            while len(parts) < nprocs:
                try:
                    parts.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
                except queue.Empty:
                    raise RuntimeError(f"load processes did not report within the phase's time bound") from None
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
        pairs = [(d, l) for part in parts for d, l in zip(array("d", part["ok_done"]), array("d", part["ok_lat"]))]
        done = sorted(d for d, _ in pairs)
        lat = sorted(l for _, l in pairs)
        svc = sorted(itertools.chain.from_iterable(array("d", part["ok_svc"]) for part in parts))
        # Latency per second of the run (by send or due time): shows whether the tail is spread out
        # or comes from a few stalls.
        buckets: dict[int, list[float]] = {}
        for d, l in pairs:
            buckets.setdefault(int(d - l), []).append(l)
        timeline = []
        for second in sorted(buckets):
            vals = sorted(buckets[second])
            timeline.append({"t": second, "n": len(vals), "p50_ms": round(percentile(vals, 50) * 1000, 1),
                             "p99_ms": round(percentile(vals, 99) * 1000, 1), "max_ms": round(vals[-1] * 1000, 1)})
        errors: dict[str, int] = {}
        for part in parts:
            for kind, n in part["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        in_window = sum(1 for d in done if d <= duration)
        exhausted = any(part["exhausted"] for part in parts)
        window = duration
        if exhausted and mode == "closed" and done:
            window = min(duration, done[-1])  # ran out of bodies early: rate over the time it ran
        ncpu = os.cpu_count() or 1
        busy_cores = _busy_cores(machine0, machine1)
        server_cores = _cpu_delta(cpu_server0, cpu_server1) / duration
        helper_cores = _cpu_delta(cpu_helpers0, cpu_helpers1) / duration
        worker_cores = [_cpu_delta({w: cpu_server0.get(w, 0.0)}, {w: cpu_server1.get(w, 0.0)}) / duration
                        for w in workers]
        loadgen_cores = sum(part["cpu"] for part in parts) / duration
        other_cores = max(0.0, busy_cores - server_cores - helper_cores - loadgen_cores)
        result = {
            "mode": mode, "connections": conns, "load_processes": nprocs, "duration_s": duration,
            "sent": sum(part["sent"] for part in parts), "ok": len(done),
            "ok_desk": sum(part["desk_ok"] for part in parts),
            "ok_in_window": in_window, "throughput_msg_s": round(in_window / window, 1),
            "errors": sum(errors.values()), "error_kinds": errors,
            "latency_ms": {f"p{p:g}": round(percentile(lat, p) * 1000, 2) for p in (50, 90, 99, 99.9)}
            | {"max": round(lat[-1] * 1000, 2) if lat else float("nan")},
            # From the moment the request actually left (open loop: not charged for waiting for a
            # free connection or a late wake-up): what a latency-from-send tool would report.
            "latency_from_send_ms": {f"p{p:g}": round(percentile(svc, p) * 1000, 2) for p in (50, 90, 99)},
            "connections_per_worker": spread,
            "body_pool_exhausted": exhausted,
            "background_cores_before": round(background, 2),
            "noisy": other_cores > self.args.quiet_threshold or background > self.args.quiet_threshold,
            "cpu": {"machine_busy_pct": round(busy_cores / ncpu * 100, 1),
                    "server_cores": round(server_cores, 2),
                    "postgres_redis_cores": round(helper_cores, 2),
                    "loadgen_cores": round(loadgen_cores, 2),
                    "other_processes_cores": round(other_cores, 2),
                    "per_worker_cores": [round(c, 2) for c in worker_cores],
                    "server_cpu_ms_per_msg": round(server_cores * duration * 1000 / in_window, 3)
                    if in_window else None,
                    "cores": ncpu},
        }
        result["timeline"] = timeline
        if mode == "open":
            result["target_rate_msg_s"] = round(rate, 1)
        return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A gunicorn master started by this script, stopped on exit whatever happens."""

    def __init__(self, label: str, app: str, env: dict[str, str], args: argparse.Namespace,
                 database: "BenchDatabase | None" = None) -> None:
        self.label = label
        self.database = database
        self.port = free_port()
        self.log_path = RESULTS / f"gunicorn-{label}.log"
        self.cmd = [str(VENV_BIN / "gunicorn"), "-w", str(args.workers), "-k", "gthread",
                    "--threads", str(args.threads), "-b", f"{HOST}:{self.port}",
                    "--keep-alive", "5", "--graceful-timeout", "5", "--timeout", "30", app]
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.desk_indexes: frozenset[int] = frozenset()  # see PhaseSpec.desk_indexes

    def start(self) -> None:
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _live_servers.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200 and len(self.worker_pids()) >= 1:
                    time.sleep(0.5)  # let every worker finish booting
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label}: not healthy within 30 s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                return [int(p) for p in fh.read().split()]
        except OSError:
            return []

    def pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def helper_pids(self) -> list[int]:
        """The Postgres backends serving this app's database, and redis-server: work done for it."""
        if self.database is None:
            return []
        return self.database.backend_pids() + _pids_named("redis-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self in _live_servers:
            _live_servers.remove(self)
        with contextlib.suppress(Exception):
            self.log.close()


_live_servers: list[Server] = []


def _stop_all() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.stop()


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _plain_pg(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


class BenchDatabase:
    """A fresh Postgres database for each run of the real app, dropped afterwards."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.admin_url = admin_url
        self.name = name
        self.url = _with_db(admin_url, name)

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(_plain_pg(self.admin_url), autocommit=True) as conn:
            conn.execute(sql)

    def recreate(self, env: dict[str, str]) -> None:
        self.drop()
        self._admin(f'CREATE DATABASE "{self.name}"')
        done = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db-upgrade"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"db-upgrade failed:\n{done.stdout}{done.stderr}")

    def backend_pids(self) -> list[int]:
        import psycopg

        try:
            with psycopg.connect(_plain_pg(self.admin_url), autocommit=True) as conn:
                rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchall()
            return [r[0] for r in rows]
        except Exception:
            return []

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def real_app_env(args: argparse.Namespace, database_url: str, log_level: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(APP_ENV="development", WECHAT_EMULATOR="false", DATABASE_URL=database_url,
               REDIS_URL=args.redis_url, JOB_QUEUE="rq", LOG_LEVEL=log_level, LOG_FORMAT="json",
               WECHAT_APPID=DEMO_APPID, WECHAT_SECRET=DEMO_SECRET, WECHAT_TOKEN=DEMO_TOKEN,
               WECHAT_AES_KEY=DEMO_AES_KEY, WECHAT_ORIGINAL_ID=DEMO_ORIGINAL_ID,
               PYTHONDONTWRITEBYTECODE="1")
    return env


def baseline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(WECHAT_APPID=DEMO_APPID, WECHAT_TOKEN=DEMO_TOKEN, WECHAT_AES_KEY=DEMO_AES_KEY,
               PYTHONDONTWRITEBYTECODE="1")
    return env


def open_desk_conversations(args: argparse.Namespace, database_url: str) -> list[int]:
    """--desk-fraction: an `assigned` conversation (one team, one demo agent) for that fraction of
    the OPENID_POOL shoppers, in this server's database, and their Redis marks (the key and TTL
    the app uses), so their pushes take the desk path. Returns the shopper numbers."""
    from bench.desk_setup import desk_indexes, seed_desk, set_marks

    chosen = desk_indexes(OPENID_POOL, args.desk_fraction)
    seeded = seed_desk(database_url, [openid_for(n) for n in chosen])
    set_marks(args.redis_url, DEMO_APPID, seeded["conversations"])
    log(f"  desk: {len(chosen)} of {OPENID_POOL} shoppers in an assigned conversation (marks set)")
    return chosen


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _closed_line(label: str, conns: int, res: dict[str, Any]) -> str:
    return (f"  {label:<10} closed loop, {conns:>3} connections: {res['throughput_msg_s']:8.1f} msg/s, "
            f"p50 {res['latency_ms']['p50']} ms, p99 {res['latency_ms']['p99']} ms, {res['errors']} errors, "
            f"CPU cores: server {res['cpu']['server_cores']}, pg+redis {res['cpu']['postgres_redis_cores']}, "
            f"load {res['cpu']['loadgen_cores']}, others {res['cpu']['other_processes_cores']}; "
            f"conns/worker {res['connections_per_worker']}" + ("  [NOISY]" if res["noisy"] else ""))


def _open_line(label: str, rate: float, fraction: float, res: dict[str, Any]) -> str:
    lat, snd = res["latency_ms"], res["latency_from_send_ms"]
    return (f"  {label:<10} open loop at {rate:.1f} msg/s ({fraction:.0%} of peak): p50 {lat['p50']} ms, "
            f"p90 {lat['p90']} ms, p99 {lat['p99']} ms (from send: p99 {snd['p99']} ms), {res['errors']} errors, "
            f"server {res['cpu']['server_cores']} cores, load {res['cpu']['loadgen_cores']}, "
            f"others {res['cpu']['other_processes_cores']}" + ("  [NOISY]" if res["noisy"] else ""))


def bench_all(runner: Runner, servers: list[Server], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Warm-up, closed loop at each concurrency, open loop at 80% of each server's own peak.

    The servers take turns phase by phase (baseline, full, full at INFO, then the next level),
    so a slow drift in what the machine delivers (it is shared) biases none of them."""
    outs = {s.label: {"server": s.label, "gunicorn": " ".join(s.cmd[1:]), "closed_loop": [],
                      "open_loop_sweep": []} for s in servers}
    estimate: dict[str, float] = {}
    for server in servers:
        warm = runner.run_phase(server, "closed", 8, args.warmup, bodies=int(args.warmup * 6000))
        log(f"  {server.label:<10} warm-up: {warm['throughput_msg_s']} msg/s, {warm['errors']} errors")
        outs[server.label]["warmup"] = warm
        estimate[server.label] = max(warm["throughput_msg_s"], 200.0)
    for level, conns in enumerate(args.concurrency):
        for server in (servers if level % 2 == 0 else servers[::-1]):
            est = estimate[server.label]
            res = runner.run_phase(server, "closed", conns, args.duration,
                                   bodies=int(max(est * 2.0, est + 500) * args.duration))
            if res["body_pool_exhausted"]:
                log("  (body pool ran out early; rate measured over the time it ran)")
            log(_closed_line(server.label, conns, res))
            outs[server.label]["closed_loop"].append(res)
            estimate[server.label] = max(est, res["throughput_msg_s"])
    for server in servers:
        out = outs[server.label]
        # The peak is taken from phases the rest of the machine left alone, when there are any.
        candidates = [r for r in out["closed_loop"] if not r["noisy"]] or out["closed_loop"]
        best = max(candidates, key=lambda r: r["throughput_msg_s"])
        out["peak_msg_s"] = best["throughput_msg_s"]
        out["peak_connections"] = best["connections"]
    for server in servers:
        out = outs[server.label]
        rate = args.load_fraction * out["peak_msg_s"]
        res = runner.run_phase(server, "open", args.open_connections, args.open_duration, rate=rate)
        res["fraction_of_peak"] = args.load_fraction
        log(_open_line(server.label, rate, args.load_fraction, res))
        out["open_loop"] = res
    # Lower rates too (not for the INFO run): where the latency target holds, if not at 80%.
    for fraction in args.sweep:
        for server in servers:
            if server.label == "full-INFO":
                continue
            out = outs[server.label]
            rate = fraction * out["peak_msg_s"]
            res = runner.run_phase(server, "open", args.open_connections, args.open_duration, rate=rate)
            res["fraction_of_peak"] = fraction
            log(_open_line(server.label, rate, fraction, res))
            out["open_loop_sweep"].append(res)
    return [outs[s.label] for s in servers]


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def render_table(runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    cols = [r["server"] for r in runs]
    rows: list[tuple[str, list[str]]] = []
    levels = sorted({c["connections"] for r in runs for c in r["closed_loop"]})
    for n in levels:
        vals = []
        for r in runs:
            hit = next((c for c in r["closed_loop"] if c["connections"] == n), None)
            vals.append((_fmt(hit["throughput_msg_s"]) + ("*" if hit["noisy"] else "")) if hit else "-")
        rows.append((f"closed loop, {n} conns (msg/s)", vals))
    rows.append(("PEAK throughput (msg/s)", [_fmt(r["peak_msg_s"]) for r in runs]))
    rows.append(("  at connections", [str(r["peak_connections"]) for r in runs]))
    rows.append(("  closed-loop errors (all levels)", [str(sum(c["errors"] for c in r["closed_loop"])) for r in runs]))
    rows.append(("  server CPU ms/msg at peak", [_fmt(next(c for c in r["closed_loop"] if c["connections"] == r["peak_connections"])["cpu"]["server_cpu_ms_per_msg"], 3) for r in runs]))
    rows.append(("open loop target rate (80% peak)", [_fmt(r["open_loop"]["target_rate_msg_s"]) for r in runs]))
    rows.append(("  achieved (ok msg/s)", [_fmt(r["open_loop"]["throughput_msg_s"]) for r in runs]))
    for p in ("p50", "p90", "p99", "p99.9", "max"):
        rows.append((f"  latency {p} (ms)", [_fmt(r["open_loop"]["latency_ms"][p], 2) for r in runs]))
    rows.append(("  latency p99 from actual send (ms)", [_fmt(r["open_loop"]["latency_from_send_ms"]["p99"], 2) for r in runs]))
    rows.append(("  errors", [str(r["open_loop"]["errors"]) for r in runs]))
    if any(r["open_loop"].get("ok_desk") for r in runs):
        rows.append(("  of the ok: desk pushes (`success`)", [str(r["open_loop"].get("ok_desk", 0)) for r in runs]))
    rows.append(("  noisy (other processes busy)", ["yes" if r["open_loop"]["noisy"] else "no" for r in runs]))
    for key, name in (("server_cores", "server"), ("postgres_redis_cores", "postgres+redis"),
                      ("loadgen_cores", "load generator"), ("other_processes_cores", "other processes")):
        rows.append((f"  CPU cores: {name}", [_fmt(r["open_loop"]["cpu"][key], 2) for r in runs]))
    fractions = sorted({sw["fraction_of_peak"] for r in runs for sw in r.get("open_loop_sweep", [])})
    for fraction in fractions:
        vals = []
        for r in runs:
            hit = next((sw for sw in r.get("open_loop_sweep", []) if sw["fraction_of_peak"] == fraction), None)
            vals.append(f"{_fmt(hit['target_rate_msg_s'], 0)}: {_fmt(hit['latency_ms']['p99'], 1)}"
                        + ("*" if hit["noisy"] else "") if hit else "-")
        rows.append((f"open loop at {fraction:.0%} peak, rate: p99 ms", vals))
    w0 = max(len(name) for name, _ in rows) + 2
    w = max(14, *(len(c) + 2 for c in cols))
    lines = ["".ljust(w0) + "".join(c.rjust(w) for c in cols), "-" * (w0 + w * len(cols))]
    lines += [name.ljust(w0) + "".join(v.rjust(w) for v in vals) for name, vals in rows]
    lines.append("(* = phase disturbed by other processes on the machine; not used for the peak if any clean phase exists)")
    lines.append("")
    ratio = summary.get("throughput_ratio")
    if ratio is not None:
        lines.append(f"full / baseline peak throughput: {ratio:.2f}  (target >= 0.5)  "
                     f"{'MET' if summary['throughput_ratio_met'] else 'MISSED'}")
    p99 = summary.get("full_p99_ms")
    if p99 is not None:
        lines.append(f"full pipeline p99 at 80% of its peak: {p99:.2f} ms  (target < 50 ms)  "
                     f"{'MET' if summary['p99_met'] else 'MISSED'}")
    best = summary.get("full_highest_tested_rate_with_p99_under_50ms", "absent")
    if best != "absent":
        lines.append("full pipeline, highest tested open-loop rate with p99 < 50 ms: "
                     + (f"{best:.1f} msg/s" if best is not None else "none"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per closed-loop level (default 10)")
    ap.add_argument("--open-duration", type=float, default=None,
                    help="seconds of the open-loop run (default: 1.5 x --duration)")
    ap.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before measuring (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers for every server (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="gthread threads per worker (default 4)")
    ap.add_argument("--concurrency", default="4,8,16,32",
                    help="closed-loop connection counts, comma separated (default 4,8,16,32)")
    ap.add_argument("--open-connections", type=int, default=32,
                    help="connections available to the open-loop schedule (default 32)")
    ap.add_argument("--load-fraction", type=float, default=0.8, help="open-loop rate as a fraction of peak")
    ap.add_argument("--sweep", default="0.4,0.6",
                    help="extra open-loop runs at these fractions of peak (baseline and full; '' for none)")
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="keep connections where the kernel puts them instead of spreading them evenly over workers")
    ap.add_argument("--load-procs", type=int, default=2, help="load generator processes (default 2)")
    ap.add_argument("--servers", default="baseline,full",
                    help="which servers to run: baseline, full (default both)")
    ap.add_argument("--no-info-run", action="store_true", help="skip the extra full-pipeline run at LOG_LEVEL=INFO")
    ap.add_argument("--admin-database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="Postgres URL used to create and drop the benchmark's own database")
    ap.add_argument("--database-name", default="wx_bench", help="the database created for the real app")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="Redis db for the real app (flushed)")
    ap.add_argument("--quiet-threshold", type=float, default=0.2,
                    help="cores other processes may use before a phase counts as noisy (default 0.2)")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="seconds to wait before each phase for other processes to go quiet (default 30)")
    ap.add_argument("--desk-fraction", type=float, default=0.0,
                    help="fraction of the 2000 shoppers with an open (assigned) customer-service "
                         "conversation and its Redis mark, whose pushes take the desk path in the full "
                         "app (default 0: the feature is on, but nobody is in a conversation)")
    ap.add_argument("--output", default=str(RESULTS / "webhook_load.json"))
    args = ap.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.sweep = [float(f) for f in args.sweep.split(",") if f.strip()]
    args.open_duration = args.open_duration or round(args.duration * 1.5, 1)
    servers_wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.duration <= 0 or args.duration > 120 or args.open_duration > 180:
        ap.error("keep phases between 0 and 120 s (open loop up to 180 s)")
    if not 0.0 <= args.desk_fraction <= 1.0:
        ap.error("--desk-fraction is between 0 and 1")

    RESULTS.mkdir(parents=True, exist_ok=True)
    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    runner = Runner(args)
    runs: list[dict[str, Any]] = []
    databases: list[BenchDatabase] = []
    started = time.time()
    try:
        servers: list[Server] = []
        if "baseline" in servers_wanted:
            servers.append(Server("baseline", "bench.baseline_app:app", baseline_env(), args))
        if "full" in servers_wanted:
            flush_redis(args.redis_url)
            for level in ["WARNING"] + ([] if args.no_info_run else ["INFO"]):
                suffix = "" if level == "WARNING" else "_info"
                db = BenchDatabase(args.admin_database_url, args.database_name + suffix)
                databases.append(db)
                env = real_app_env(args, db.url, level)
                db.recreate(env)
                server = Server("full" + ("" if level == "WARNING" else "-INFO"), "wsgi:app", env, args,
                                database=db)
                if args.desk_fraction > 0:
                    server.desk_indexes = frozenset(open_desk_conversations(args, db.url))
                servers.append(server)
        for server in servers:
            server.start()
            log(f"started {server.label}: gunicorn {' '.join(server.cmd[1:])}")
        runs = bench_all(runner, servers, args)
        for run in runs:
            if run["server"].startswith("full"):
                run["log_level"] = "INFO" if run["server"] == "full-INFO" else "WARNING"
    finally:
        _stop_all()
        for db in databases:
            with contextlib.suppress(Exception):
                db.drop()
        if "full" in servers_wanted:
            with contextlib.suppress(Exception):
                flush_redis(args.redis_url)

    by = {r["server"]: r for r in runs}
    summary: dict[str, Any] = {}
    if "baseline" in by and "full" in by:
        ratio = by["full"]["peak_msg_s"] / by["baseline"]["peak_msg_s"] if by["baseline"]["peak_msg_s"] else 0.0
        summary.update(throughput_ratio=round(ratio, 3), throughput_ratio_target=0.5,
                       throughput_ratio_met=ratio >= 0.5)
    if "full" in by:
        p99 = by["full"]["open_loop"]["latency_ms"]["p99"]
        errors = by["full"]["open_loop"]["errors"]
        summary.update(full_p99_ms=p99, full_p99_target_ms=50.0, p99_met=p99 < 50.0 and errors == 0)
        meeting = [r for r in [by["full"]["open_loop"], *by["full"].get("open_loop_sweep", [])]
                   if r["latency_ms"]["p99"] < 50.0 and r["errors"] == 0]
        summary["full_highest_tested_rate_with_p99_under_50ms"] = (
            max(r["target_rate_msg_s"] for r in meeting) if meeting else None)
    table = render_table(runs, summary)
    print(table)

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "wx_service", "handlers", "config", "wsgi.py"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.split("\n")
    except Exception:
        commit, dirty = "", []
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "git_commit": commit,
        "service_files_uncommitted": [line.strip() for line in dirty if line.strip()],
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items()},
        "summary": summary,
        "runs": runs,
        "table": table,
    }
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
