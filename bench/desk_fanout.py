"""Fan-out latency of the customer-service desk: a shopper's push arriving at POST /wechat to an
agent's console stream (SSE) receiving the event, with 50 agents connected, beside a bare Redis
PUBLISH to 50 redis-py subscribers measured in the same run.

    .venv/bin/python bench/desk_fanout.py [--agents 50] [--pushes 400] [--rate 20] \
        [--database-name wx_bench_fanout] [--redis-url redis://127.0.0.1:6379/8]

Set-up (not timed): a fresh Postgres database, migrated (`flask db-upgrade`); the Redis db
flushed; one team with --agents staff members, each an online agent with a console password;
one conversation per push (status `assigned`, handed round-robin to the agents, so a message only
wakes the console) with the shopper's Redis mark, as the desk leaves them (bench/desk_setup.py).
The real app runs under gunicorn (`-w 2 -k gthread --threads 40` by default: 50 streams each
hold a thread, and the pushes need some more), APP_ENV=development, WECHAT_EMULATOR=false,
JOB_QUEUE=rq (no worker; the desk path queues nothing), LOG_LEVEL=WARNING.

Every agent signs in with its own session (GET /console/login for the CSRF token, POST the
form), then opens `GET /console/api/desk/stream` on its own keep-alive connection. The streams are
spread evenly over the gunicorn workers (as bench/webhook_load.py spreads its connections), and
read by threads of a separate process, so the sender's schedule is not held up by 50 readers.

Phases, taking turns (baseline first, then the desk; --rounds times):

- desk: --pushes signed safe-mode text pushes (built as bench/webhook_load.py builds them), one
  from each seeded shopper, due at a fixed --rate over 4 keep-alive connections. Each push must
  be answered 200 `success` (the desk path). Latency, for each (push, stream) pair: the receive
  time of that stream's `event: desk` whose JSON has kind "message" and the push's conversation
  id, minus the time the push was sent. The event's own `at` (the app's publish time) splits it
  into webhook-to-PUBLISH and PUBLISH-to-browser.
- baseline: the same number of messages at the same rate, each a bare redis-py PUBLISH of a small
  JSON to a channel with --agents subscribers (one redis-py PubSub connection and thread each, in
  a separate process); latency: PUBLISH called to a subscriber's receive.

A (push, stream) pair with no event within --settle seconds after the last push counts as missed.

Results: a table on stdout and bench/results/desk_fanout.json; the gunicorn log in
bench/results/gunicorn-desk-fanout.log.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import json
import multiprocessing as mp
import re
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.desk_setup import seed_desk, set_marks  # noqa: E402
from bench.webhook_load import (  # noqa: E402
    DEMO_APPID,
    DEMO_ORIGINAL_ID,
    HOST,
    RESULTS,
    BenchDatabase,
    Server,
    _accepting_worker,
    _on_signal,
    _state,
    _stop_all,
    flush_redis,
    percentile,
    real_app_env,
)
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap  # noqa: E402

STREAM_PATH = "/console/api/desk/stream"
PUSH_HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}
PASSWORD = "bench-password-1"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Console sign-in and streams
# ---------------------------------------------------------------------------------------------
def sign_in(port: int, username: str, password: str) -> str:
    """Sign one agent in as a browser would; returns its Cookie header."""
    import requests

    s = requests.Session()
    base = f"http://{HOST}:{port}"
    page = s.get(base + "/console/login", timeout=10)
    found = _CSRF_RE.search(page.text)
    if page.status_code != 200 or not found:
        raise RuntimeError(f"login page: HTTP {page.status_code}, CSRF token {'found' if found else 'missing'}")
    done = s.post(base + "/console/login", data={"csrf_token": found.group(1), "username": username,
                                                 "password": password}, allow_redirects=False, timeout=10)
    if done.status_code not in (302, 303):
        raise RuntimeError(f"sign-in of {username}: HTTP {done.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in s.cookies)


def open_stream(port: int, cookie: str, worker_pids: list[int], quota: list[int]) -> tuple[Any, Any]:
    """One SSE connection, on a worker that still has room in `quota` (re-dialled otherwise).
    Returns (connection, response) after the headers arrived."""
    for _attempt in range(200):
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        conn.connect()
        owner = None
        if len(worker_pids) > 1:
            deadline = time.monotonic() + 1.0
            while owner is None and time.monotonic() < deadline:
                owner = _accepting_worker(port, conn.sock.getsockname()[1], worker_pids)
                if owner is None:
                    time.sleep(0.002)
            if owner is not None and quota[owner] <= 0:
                conn.close()
                continue
        conn.request("GET", STREAM_PATH, headers={"Cookie": cookie, "Accept": "text/event-stream",
                                                  "Cache-Control": "no-cache"})
        resp = conn.getresponse()
        ctype = resp.getheader("Content-Type", "")
        if resp.status != 200 or not ctype.startswith("text/event-stream"):
            body = resp.read(300)
            raise RuntimeError(f"{STREAM_PATH}: HTTP {resp.status} {ctype!r} {body[:200]!r}")
        if owner is not None:
            quota[owner] -= 1
        return conn, resp
    raise RuntimeError("could not place the stream on a worker with room")


def stream_reader_process(port: int, cookies: list[str], worker_pids: list[int], ready: Any, stop: Any,
                          results: Any) -> None:
    """Open one stream per cookie, read every event until `stop`, report what each stream heard:
    [(stream, conversation, kind, at, received wall time)]."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    n = len(cookies)
    quota = [n // len(worker_pids) + (1 if k < n % len(worker_pids) else 0) for k in range(len(worker_pids))] \
        if worker_pids else [n]
    streams = []
    try:
        for cookie in cookies:
            streams.append(open_stream(port, cookie, worker_pids, quota))
    except Exception as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}", "opened": len(streams)})
        ready.set()
        return
    heard: list[list[tuple]] = [[] for _ in streams]
    comments = [0] * len(streams)
    bad = [0] * len(streams)
    subscribed = [threading.Event() for _ in streams]  # the stream said `ready` (it has subscribed)

    def read(k: int) -> None:
        _conn, resp = streams[k]
        event, data = "", []
        out = heard[k]
        while not stop.is_set():
            try:
                line = resp.readline()
            except Exception:  # the stream closed (at the end: we shut the socket down under it)
                return
            now = time.time()
            if not line:
                return
            line = line.rstrip(b"\r\n")
            if not line:  # end of one event
                if event == "ready":
                    subscribed[k].set()
                if data and event == "desk":
                    try:
                        payload = json.loads(b"\n".join(data))
                        out.append((k, payload.get("conversation"), payload.get("kind"), payload.get("at"), now))
                    except ValueError:
                        bad[k] += 1
                event, data = "", []
            elif line.startswith(b":"):
                comments[k] += 1
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))

    threads = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(len(streams))]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 10  # a stream without a `ready` event: go on after 10 s
    for ev in subscribed:
        ev.wait(max(0.0, deadline - time.monotonic()))
    ready.set()
    stop.wait()
    for conn, _resp in streams:
        with contextlib.suppress(Exception):
            conn.sock.shutdown(2)
        with contextlib.suppress(Exception):
            conn.close()
    for th in threads:
        th.join(timeout=5)
    results.put({"heard": [e for h in heard for e in h], "comments": sum(comments), "bad_json": sum(bad),
                 "opened": len(streams), "ready_events": sum(ev.is_set() for ev in subscribed)})


def subscriber_process(redis_url: str, channel: str, count: int, ready: Any, stop: Any, results: Any) -> None:
    """The baseline's receivers: `count` redis-py PubSub connections, a thread each."""
    import redis

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    subs = []
    for _ in range(count):
        ps = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        ps.subscribe(channel)
        ps.get_message(timeout=1.0)  # the subscribe confirmation
        subs.append(ps)
    heard: list[list[tuple]] = [[] for _ in subs]

    def read(k: int) -> None:
        ps, out = subs[k], heard[k]
        while not stop.is_set():
            msg = ps.get_message(timeout=0.5)
            if msg is None or msg.get("type") != "message":
                continue
            now = time.time()
            payload = json.loads(msg["data"])
            out.append((k, payload["conversation"], payload["kind"], payload["at"], now))

    threads = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(len(subs))]
    for th in threads:
        th.start()
    ready.set()
    stop.wait()
    for th in threads:
        th.join(timeout=5)
    for ps in subs:
        with contextlib.suppress(Exception):
            ps.close()
    results.put({"heard": [e for h in heard for e in h], "opened": len(subs)})


# ---------------------------------------------------------------------------------------------
# Senders
# ---------------------------------------------------------------------------------------------
def build_pushes(openids: list[str], msg_id_base: int) -> list[tuple[str, bytes]]:
    state = _state()
    timestamp = str(int(time.time()))
    out = []
    for i, openid in enumerate(openids):
        fields = [("ToUserName", DEMO_ORIGINAL_ID), ("FromUserName", openid), ("CreateTime", int(timestamp)),
                  ("MsgType", "text"), ("Content", "请问我的订单什么时候发货？"), ("MsgId", msg_id_base + i)]
        query, body = sign_and_wrap(state, build_push_xml(fields), "safe", timestamp, f"fan{msg_id_base}n{i}")
        out.append(("/wechat?" + urlencode(query), body))
    return out


def send_on_schedule(count: int, rate: float, senders: int, send_one) -> tuple[list[float | None], list[str]]:
    """Call send_one(i) for i in range(count), item i due at t0 + i/rate, on `senders` threads.
    Returns the wall time each item was sent (None: failed) and the failures."""
    sent: list[float | None] = [None] * count
    failures: list[str] = []
    t0 = time.monotonic() + 0.2
    nxt = iter(range(count))
    lock = threading.Lock()

    def run(t: int) -> None:
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                sent[i] = send_one(t, i)
            except Exception as exc:  # an error of the phase, reported
                failures.append(f"{i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sent, failures


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------
def summarize(label: str, sent: list[float | None], heard: list[tuple], ids: list[int], receivers: int,
              split_at: bool) -> dict[str, Any]:
    """Latency over every (message, receiver) pair that heard the message's `message` event."""
    index = {cid: i for i, cid in enumerate(ids)}
    lat, to_publish, from_publish = [], [], []
    per_message: dict[int, int] = {}
    seen_pairs = set()
    duplicates = 0
    for stream, cid, kind, at, recv in heard:
        if kind != "message" or cid not in index:
            continue
        i = index[cid]
        if sent[i] is None:
            continue
        if (i, stream) in seen_pairs:
            duplicates += 1
            continue
        seen_pairs.add((i, stream))
        per_message[i] = per_message.get(i, 0) + 1
        lat.append(recv - sent[i])
        if split_at and isinstance(at, (int, float)):
            to_publish.append(at - sent[i])
            from_publish.append(recv - at)
    expected = sum(1 for s in sent if s is not None) * receivers

    def pct(vals: list[float]) -> dict[str, float]:
        vals = sorted(vals)
        return {f"p{p:g}": round(percentile(vals, p) * 1000, 2) for p in (50, 90, 99)} | {
            "max": round(vals[-1] * 1000, 2) if vals else float("nan")}

    out = {"label": label, "messages_sent": sum(1 for s in sent if s is not None), "receivers": receivers,
           "deliveries_expected": expected, "deliveries": len(lat), "missed": expected - len(lat),
           "duplicates": duplicates,
           "receivers_per_message": {"min": min(per_message.values(), default=0),
                                     "max": max(per_message.values(), default=0)},
           "latency_ms": pct(lat)}
    if split_at:
        out["push_sent_to_publish_ms"] = pct(to_publish)
        out["publish_to_stream_ms"] = pct(from_publish)
    return out


def _kinds(events) -> dict[str, int]:
    """How many events of each kind (and, for `message` events of unknown conversations, that)."""
    out: dict[str, int] = {}
    for e in events:
        out[str(e[2])] = out.get(str(e[2]), 0) + 1
    return out


def run_desk(args: argparse.Namespace, server: Server, cookies: list[str], shoppers: list[tuple[str, int]],
             round_no: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=stream_reader_process,
                       args=(server.port, cookies, server.worker_pids(), ready, stop, results), daemon=True)
    proc.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("streams not open within 120 s")
        time.sleep(1.0)  # every stream subscribed
        pushes = build_pushes([o for o, _ in shoppers], int(time.time()) * 10**6 + round_no * 10**5)
        conns = [http.client.HTTPConnection(HOST, server.port, timeout=10) for _ in range(args.senders)]
        answers: list[bytes | None] = [None] * len(pushes)

        def send_one(t: int, i: int) -> float:
            path, body = pushes[i]
            at = time.time()
            try:
                conns[t].request("POST", path, body, PUSH_HEADERS)
                resp = conns[t].getresponse()
                data = resp.read()
            except Exception:
                conns[t].close()
                conns[t] = http.client.HTTPConnection(HOST, server.port, timeout=10)
                raise
            if resp.status != 200 or data != b"success":
                raise RuntimeError(f"push answered HTTP {resp.status} {data[:60]!r}")
            answers[i] = data
            return at

        sent, failures = send_on_schedule(len(pushes), args.rate, args.senders, send_one)
        time.sleep(args.settle)
    finally:
        stop.set()
        try:
            report = results.get(timeout=60)
        except Exception:
            report = {"error": "stream reader process did not report"}
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    if "error" in report:
        raise RuntimeError(f"streams: {report['error']} (opened {report.get('opened', 0)})")
    out = summarize("desk (push -> SSE)", sent, report["heard"], [cid for _, cid in shoppers], len(cookies), True)
    out.update(push_failures=len(failures), push_failure_examples=failures[:5],
               heartbeat_comments=report["comments"], bad_json=report["bad_json"],
               streams_opened=report["opened"], streams_ready=report["ready_events"],
               other_events=sum(1 for e in report["heard"] if e[2] != "message"),
               other_kinds=_kinds(e for e in report["heard"] if e[2] != "message"))
    return out


def run_baseline(args: argparse.Namespace, round_no: int) -> dict[str, Any]:
    import redis

    channel = f"bench:fanout:{secrets.token_hex(4)}"
    ctx = mp.get_context("fork")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=subscriber_process, args=(args.redis_url, channel, args.agents, ready, stop, results),
                       daemon=True)
    proc.start()
    client = redis.Redis.from_url(args.redis_url)
    try:
        if not ready.wait(60):
            raise RuntimeError("subscribers not ready within 60 s")
        time.sleep(1.0)
        ids = list(range(1, args.pushes + 1))
        publishers = [redis.Redis.from_url(args.redis_url) for _ in range(args.senders)]

        def send_one(t: int, i: int) -> float:
            at = time.time()
            receivers = publishers[t].publish(channel, json.dumps(
                {"kind": "message", "conversation": ids[i], "team": 1, "at": at}, separators=(",", ":")))
            if receivers != args.agents:
                raise RuntimeError(f"PUBLISH reached {receivers} subscribers")
            return at

        sent, failures = send_on_schedule(len(ids), args.rate, args.senders, send_one)
        time.sleep(args.settle)
    finally:
        stop.set()
        try:
            report = results.get(timeout=60)
        except Exception:
            report = {"heard": [], "opened": 0}
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
        client.close()
    out = summarize("baseline (PUBLISH -> redis-py)", sent, report["heard"], ids, args.agents, False)
    out.update(publish_failures=len(failures), publish_failure_examples=failures[:5])
    return out


def render(rounds: list[dict[str, Any]]) -> str:
    lines = []
    for r in rounds:
        b, d = r["baseline"], r.get("desk")
        lines.append(f"round {r['round']}: {b['messages_sent']} messages at {r['rate']}/s, {b['receivers']} receivers")
        hdr = f"{'':<38}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}   deliveries (missed)"
        lines.append(hdr)
        lines.append("-" * len(hdr))

        def row(name: str, lat: dict[str, float], tail: str = "") -> None:
            lines.append(f"{name:<38}" + "".join(f"{lat[k]:>9.2f}" for k in ("p50", "p90", "p99", "max")) + tail)

        row("baseline: PUBLISH -> subscriber (ms)", b["latency_ms"], f"   {b['deliveries']} ({b['missed']})")
        if d:
            row("desk: push sent -> SSE event (ms)", d["latency_ms"], f"   {d['deliveries']} ({d['missed']})")
            row("  push sent -> app's PUBLISH (`at`)", d["push_sent_to_publish_ms"])
            row("  app's PUBLISH -> SSE event", d["publish_to_stream_ms"])
            ratio = {k: d["latency_ms"][k] / b["latency_ms"][k] if b["latency_ms"][k] else float("nan")
                     for k in ("p50", "p99")}
            ratio_pub = {k: d["publish_to_stream_ms"][k] / b["latency_ms"][k] if b["latency_ms"][k] else float("nan")
                         for k in ("p50", "p99")}
            lines.append(f"desk / baseline: p50 {ratio['p50']:.1f}x, p99 {ratio['p99']:.1f}x "
                         f"(PUBLISH -> SSE alone: p50 {ratio_pub['p50']:.1f}x, p99 {ratio_pub['p99']:.1f}x)")
            lines.append(f"push failures {d['push_failures']}, duplicates {d['duplicates']}, streams per message "
                         f"{d['receivers_per_message']['min']}-{d['receivers_per_message']['max']}, heartbeats "
                         f"{d['heartbeat_comments']}, other events {d['other_events']}")
        else:
            lines.append(f"desk: NOT RUN ({r.get('desk_error', '')})")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50, help="agents signed in, one stream each (default 50)")
    ap.add_argument("--pushes", type=int, default=400, help="pushes (and baseline PUBLISHes) per round (default 400)")
    ap.add_argument("--rate", type=float, default=20.0, help="pushes per second (default 20)")
    ap.add_argument("--senders", type=int, default=4, help="connections the pushes are sent on (default 4)")
    ap.add_argument("--rounds", type=int, default=1, help="baseline + desk rounds, taking turns (default 1)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait for events after the last push")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    ap.add_argument("--threads", type=int, default=40, help="gthread threads per worker (default 40)")
    ap.add_argument("--admin-database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--database-name", default="wx_bench_fanout")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/8", help="Redis db for the app (flushed)")
    ap.add_argument("--output", default=str(RESULTS / "desk_fanout.json"))
    args = ap.parse_args(argv)

    RESULTS.mkdir(parents=True, exist_ok=True)
    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    started = time.time()
    db = BenchDatabase(args.admin_database_url, args.database_name)
    rounds: list[dict[str, Any]] = []
    try:
        flush_redis(args.redis_url)
        env = real_app_env(args, db.url, "WARNING")
        db.recreate(env)
        usernames = [f"bench-agent-{k:03d}" for k in range(args.agents)]
        total = args.pushes * args.rounds
        openids = ["oFan" + format(n, "024d") for n in range(total)]
        seeded = seed_desk(db.url, openids, team_code="fanout", agents=args.agents,
                           passwords={u: PASSWORD for u in usernames})
        set_marks(args.redis_url, DEMO_APPID, seeded["conversations"])
        log(f"seeded: 1 team, {args.agents} agents, {total} assigned conversations (marks set)")
        server = Server("desk-fanout", "wsgi:app", env, args, database=db)
        server.start()
        log(f"started: gunicorn {' '.join(server.cmd[1:])}")
        cookies = [sign_in(server.port, u, PASSWORD) for u in usernames]
        log(f"{len(cookies)} agents signed in")
        for round_no in range(args.rounds):
            shoppers = [(o, seeded["conversations"][o]) for o in openids[round_no * args.pushes:(round_no + 1) * args.pushes]]
            entry: dict[str, Any] = {"round": round_no + 1, "rate": args.rate}
            entry["baseline"] = run_baseline(args, round_no)
            log(f"  baseline: {entry['baseline']['latency_ms']} ({entry['baseline']['missed']} missed)")
            try:
                entry["desk"] = run_desk(args, server, cookies, shoppers, round_no)
                log(f"  desk: {entry['desk']['latency_ms']} ({entry['desk']['missed']} missed)")
            except RuntimeError as exc:
                entry["desk_error"] = str(exc)
                log(f"  desk: not run: {exc}")
            rounds.append(entry)
    finally:
        _stop_all()
        with contextlib.suppress(Exception):
            db.drop()
        with contextlib.suppress(Exception):
            flush_redis(args.redis_url)
    table = render(rounds)
    print(table)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "git_commit": commit,
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
              "elapsed_s": round(time.time() - started, 1), "settings": vars(args), "rounds": rounds,
              "table": table}
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"results written to {args.output}")
    return 0 if all("desk" in r for r in rounds) else 2


if __name__ == "__main__":
    sys.exit(main())
