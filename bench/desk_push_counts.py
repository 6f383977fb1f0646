"""What one push costs in Postgres statements and Redis commands: a plain push against a push from
a shopper whose customer-service conversation is open (the desk path).

    .venv/bin/python bench/desk_push_counts.py [--database-name wx_bench_desk_count] \
        [--redis-url redis://127.0.0.1:6379/8] [--pushes 5]

In-process: the real app (APP_ENV=development, JOB_QUEUE=rq, Postgres, Redis) built by
create_app, pushes sent through Flask's test client (safe mode, signed and encrypted as WeChat
sends them). A fresh database is created, migrated and dropped; the Redis db is flushed before and
after.

Counted per push, after two warm-up pushes of each kind:

- Postgres: every statement psycopg sends (psycopg.Cursor.execute is wrapped, so this covers
  both SQLAlchemy's session and the PushRecorder's raw prepared INSERT on the autocommit pool),
  plus the BEGIN psycopg sends implicitly before the first statement of a transaction, and
  COMMIT / ROLLBACK when a transaction is open.
- Redis: MONITOR on the db, between two ECHO markers: the commands the app sent, and apart from
  them the commands Lua scripts ran inside an EVALSHA (no round trip of their own).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.desk_setup import seed_desk, set_marks  # noqa: E402
from bench.webhook_load import (  # noqa: E402
    DEMO_AES_KEY,
    DEMO_APPID,
    DEMO_ORIGINAL_ID,
    DEMO_SECRET,
    DEMO_TOKEN,
    RESULTS,
    BenchDatabase,
    _state,
    flush_redis,
)
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap  # noqa: E402

HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}


class PgCounter:
    """Wraps psycopg so every statement sent on any connection of this process is recorded."""

    def __init__(self) -> None:
        import psycopg
        from psycopg import pq

        self.psycopg, self.idle = psycopg, pq.TransactionStatus.IDLE
        self.seen: list[str] = []
        self.on = False

    def install(self) -> None:
        psycopg, counter = self.psycopg, self
        execute, commit, rollback = psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback

        def wrapped_execute(cur, query, params=None, **kw):
            if counter.on:
                conn = cur.connection
                if not conn.autocommit and conn.info.transaction_status == counter.idle:
                    counter.seen.append("BEGIN (implicit)")
                text = query if isinstance(query, str) else getattr(query, "as_string", lambda c: str(query))(conn)
                counter.seen.append(" ".join(str(text).split()))
            return execute(cur, query, params, **kw)

        def wrapped_commit(conn):
            if counter.on and conn.info.transaction_status != counter.idle:
                counter.seen.append("COMMIT")
            return commit(conn)

        def wrapped_rollback(conn):
            if counter.on and conn.info.transaction_status != counter.idle:
                counter.seen.append("ROLLBACK")
            return rollback(conn)

        psycopg.Cursor.execute = wrapped_execute
        psycopg.Connection.commit = wrapped_commit
        psycopg.Connection.rollback = wrapped_rollback


class RedisMonitor:
    """MONITOR in a thread; commands on our db between ECHO markers."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.lines: list[dict] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(5)
        time.sleep(0.2)

    def _run(self) -> None:
        with self.client.monitor() as m:
            self.ready.set()
            for cmd in m.listen():
                if int(cmd.get("db", -1)) == self.db:
                    with self.lock:
                        self.lines.append(cmd)

    def between(self, marker: str) -> list[dict]:
        """The commands after ECHO <marker>-start and before ECHO <marker>-end."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                texts = [c["command"] for c in self.lines]
            if f"ECHO {marker}-end" in texts:
                start = texts.index(f"ECHO {marker}-start")
                end = texts.index(f"ECHO {marker}-end")
                with self.lock:
                    return self.lines[start + 1:end]
            time.sleep(0.05)
        raise RuntimeError("MONITOR did not see the end marker")


def push_request(openid: str, msg_id: int, content: str = "你好") -> tuple[str, bytes]:
    state = _state()
    timestamp = str(int(time.time()))
    fields = [("ToUserName", DEMO_ORIGINAL_ID), ("FromUserName", openid), ("CreateTime", int(timestamp)),
              ("MsgType", "text"), ("Content", content), ("MsgId", msg_id)]
    query, body = sign_and_wrap(state, build_push_xml(fields), "safe", timestamp, f"cnt{msg_id}")
    return "/wechat?" + urlencode(query), body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admin-database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--database-name", default="wx_bench_desk_count")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    ap.add_argument("--pushes", type=int, default=5, help="counted pushes of each kind (default 5)")
    ap.add_argument("--timed", type=int, default=600,
                    help="then this many pushes of each kind, interleaved, for thread CPU per push (default 600)")
    ap.add_argument("--output", default=str(RESULTS / "desk_push_counts.json"))
    args = ap.parse_args(argv)

    db = BenchDatabase(args.admin_database_url, args.database_name)
    env = {"APP_ENV": "development", "WECHAT_EMULATOR": "false", "DATABASE_URL": db.url,
           "REDIS_URL": args.redis_url, "JOB_QUEUE": "rq", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
           "WECHAT_APPID": DEMO_APPID, "WECHAT_SECRET": DEMO_SECRET, "WECHAT_TOKEN": DEMO_TOKEN,
           "WECHAT_AES_KEY": DEMO_AES_KEY, "WECHAT_ORIGINAL_ID": DEMO_ORIGINAL_ID}
    flush_redis(args.redis_url)
    db.recreate(dict(os.environ) | env | {"PYTHONDONTWRITEBYTECODE": "1"})
    report: dict = {}
    try:
        desk_openid, plain_openid = "oCountDesk" + "0" * 18, "oCountPlain" + "0" * 17
        timed_desk = ["oTimeDesk" + format(n, "019d") for n in range(args.timed)]
        timed_plain = ["oTimePlain" + format(n, "018d") for n in range(args.timed)]
        seeded = seed_desk(db.url, [desk_openid, *timed_desk], team_code="count")
        set_marks(args.redis_url, DEMO_APPID, seeded["conversations"])
        os.environ.update(env)
        from wx_service.app import create_app

        app = create_app()
        client = app.test_client()
        pg = PgCounter()
        pg.install()
        mon = RedisMonitor(args.redis_url)
        marker = mon.client
        msg_id = int(time.time()) * 1000
        results: dict[str, list[dict]] = {"plain": [], "desk": []}
        for round_no in range(args.pushes + 2):
            for kind, openid in (("plain", plain_openid), ("desk", desk_openid)):
                msg_id += 1
                path, body = push_request(openid, msg_id)
                tag = f"m{msg_id}"
                marker.echo(f"{tag}-start")
                pg.seen.clear()
                pg.on = True
                resp = client.post(path, data=body, headers=HEADERS)
                pg.on = False
                marker.echo(f"{tag}-end")
                answer = resp.get_data()
                expect_success = kind == "desk"
                if resp.status_code != 200 or (answer == b"success") != expect_success:
                    raise RuntimeError(f"{kind} push answered {resp.status_code} {answer[:60]!r}")
                cmds = mon.between(tag)
                if round_no < 2:
                    continue  # warm-up: scripts loaded, pools filled
                results[kind].append({
                    "postgres": list(pg.seen),
                    "redis": [c["command"] for c in cmds if c.get("client_type") != "lua"],
                    "redis_in_lua": [c["command"] for c in cmds if c.get("client_type") == "lua"],
                })
        # Thread CPU per push (the app's own work in this thread: Flask, protocol, handler, the
        # clients' side of every round trip; not Postgres's or Redis's CPU), each kind from its own
        # shoppers so every desk push really UPDATEs its conversation.
        cpu: dict[str, list[float]] = {"plain": [], "desk": []}
        wall: dict[str, list[float]] = {"plain": [], "desk": []}
        for n in range(args.timed):
            for kind, openid in (("plain", timed_plain[n]), ("desk", timed_desk[n])):
                msg_id += 1
                path, body = push_request(openid, msg_id)
                c0, w0 = time.thread_time(), time.perf_counter()
                resp = client.post(path, data=body, headers=HEADERS)
                c1, w1 = time.thread_time(), time.perf_counter()
                if resp.status_code != 200:
                    raise RuntimeError(f"{kind} push answered {resp.status_code}")
                cpu[kind].append(c1 - c0)
                wall[kind].append(w1 - w0)
        timing = {}
        for kind in ("plain", "desk"):
            c, w = sorted(cpu[kind]), sorted(wall[kind])
            timing[kind] = {"cpu_ms_median": round(c[len(c) // 2] * 1000, 3),
                            "cpu_ms_mean": round(sum(c) / len(c) * 1000, 3),
                            "wall_ms_median": round(w[len(w) // 2] * 1000, 3)}
        print(f"\nthread CPU per push over {args.timed} of each kind, interleaved (median / mean ms; "
              f"serial wall median): plain {timing['plain']['cpu_ms_median']} / {timing['plain']['cpu_ms_mean']}"
              f" ({timing['plain']['wall_ms_median']}), desk {timing['desk']['cpu_ms_median']} / "
              f"{timing['desk']['cpu_ms_mean']} ({timing['desk']['wall_ms_median']})")
        import psycopg

        with psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            linked = conn.execute("SELECT count(*) FROM inbound_pushes WHERE conversation_id = %s",
                                  (seeded["conversations"][desk_openid],)).fetchone()[0]
            plain_linked = conn.execute("SELECT count(*) FROM inbound_pushes WHERE openid = %s "
                                        "AND conversation_id IS NOT NULL", (plain_openid,)).fetchone()[0]
        for kind, runs in results.items():
            counts_pg = sorted({len(r["postgres"]) for r in runs})
            counts_redis = sorted({len(r["redis"]) for r in runs})
            print(f"\n{kind} push ({len(runs)} counted): Postgres {counts_pg} statements, "
                  f"Redis {counts_redis} commands sent (+ {sorted({len(r['redis_in_lua']) for r in runs})} inside Lua)")
            sample = runs[-1]
            for sql in sample["postgres"]:
                print("   pg   ", sql[:150])
            for cmd in sample["redis"]:
                print("   redis", cmd[:150])
            for cmd in sample["redis_in_lua"]:
                print("   (lua)", cmd[:150])
        print(f"\ndesk pushes linked to the conversation: {linked} (of {args.pushes + 2}); "
              f"plain pushes linked to anything: {plain_linked}")
        report = {"results": results, "desk_pushes_linked": linked, "plain_pushes_linked": plain_linked,
                  "timing": timing}
    finally:
        with contextlib.suppress(Exception):
            app.extensions["wx"].db.engine.dispose()  # type: ignore[possibly-undefined]
            if app.extensions["wx"].db.autocommit_engine is not None:
                app.extensions["wx"].db.autocommit_engine.dispose()
        db.drop()
        flush_redis(args.redis_url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
