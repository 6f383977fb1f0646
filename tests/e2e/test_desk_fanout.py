"""Two web processes, one Redis: an event caused through one process reaches a console whose
stream is connected to the other (the architecture's rule: live pages hear Redis pub/sub, never
process memory). The second process is gunicorn (gthread, as in production) on another port,
with the same database and Redis. Needs a real Redis shared between processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import _free_port, requires_redis
from tests.e2e.desk_helpers import EventStream, first_openid, make_agent, make_team, shopper, sign_in

pytestmark = [requires_redis, pytest.mark.skipif(not os.environ.get("REDIS_URL", "").startswith("redis://"),
                                                  reason="needs a real redis:// shared between processes")]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def second_process(settings, base_url):
    port = _free_port()
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL,
           "WECHAT_API_BASE": f"{base_url}/_emulator"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1",
                                "-b", f"127.0.0.1:{port}", "wsgi:app"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=3).status_code < 500:
                break
        except requests.RequestException:  # not listening yet, or still starting up
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the second process did not start: " + process.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield url
    process.terminate()  # our own child, by its handle
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_an_event_caused_through_one_process_reaches_a_stream_on_the_other(app, base_url, emulator, second_process):
    team = make_team(app)
    make_agent(app, team, "lin")
    console = sign_in(base_url, "lin")  # the session cookie is good on both: same secret key
    stream = EventStream(console, base_url=second_process)
    try:
        client, openid = shopper(emulator, base_url), first_openid(emulator)
        client.subscribe(openid)
        assert client.text(openid, "人工")["delivered"]  # pushed to process 1
        offered = stream.wait_for(lambda e: e["kind"] == "offered")
        conversation_id = offered["conversation"]
        # And an agent's action through process 1 too.
        assert console.post(f"/console/api/desk/conversations/{conversation_id}/open").status_code == 200
        assert console.post(f"/console/api/desk/conversations/{conversation_id}/answer",
                            {"body": "您好", "client_key": "fanout-key-01"}).status_code == 201
        answer = stream.wait_for(lambda e: e["kind"] == "answer")
        assert answer["conversation"] == conversation_id
        # The other process reads the same truth.
        shown = console.http.get(f"{second_process}/console/api/desk/conversations/{conversation_id}", timeout=5)
        assert shown.status_code == 200 and shown.json()["header"]["mine"]
    finally:
        stream.close()
