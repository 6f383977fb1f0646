"""Helpers for the desk's console tests: teams and agents who can sign in, a signed-in HTTP
session with its CSRF token, and a shopper talking to the account through the emulator."""
from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from service_desk.models import Conversation
from tests.integration import test_service_desk as service_desk_helpers
from tests.integration.members_helpers import make_staff, uow
from wx_service.edges.emulator.shopper import ShopperClient

PASSWORD = "desk-pass-1234"


def make_team(app, code: str = "service", name: str = "顾客服务台") -> int:
    return service_desk_helpers.make_team(app, code, name)


def make_agent(app, team_id: int, username: str, *, status: str = "online", max_open: int = 5) -> int:
    """A staff member with a password and an agent row; returns the agent id."""
    return service_desk_helpers.make_agent(app, team_id, username, status=status, max_open=max_open,
                                           password=PASSWORD)


def make_plain_staff(app, username: str) -> None:
    """Staff who can sign in to the console but are not agents."""
    make_staff(app, username, PASSWORD)


@dataclass
class Console:
    """A signed-in console session over HTTP: `post` sends the CSRF header like the page does."""

    base_url: str
    http: requests.Session
    csrf: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), timeout=10, allow_redirects=False, **kw)

    def post(self, path: str, json: object | None = None, *, csrf: str | None = None, **kw) -> requests.Response:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        if json is None and "data" not in kw and "files" not in kw:
            json = {}
        return self.http.post(self.url(path), json=json, headers=headers, timeout=15, allow_redirects=False, **kw)

    def delete(self, path: str) -> requests.Response:
        return self.http.delete(self.url(path), headers={"X-CSRF-Token": self.csrf}, timeout=10, allow_redirects=False)


def sign_in(base_url: str, username: str, password: str = PASSWORD) -> Console:
    http = requests.Session()
    page = http.get(f"{base_url}/console/login", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = http.post(f"{base_url}/console/login", timeout=5, allow_redirects=False,
                         data={"csrf_token": token, "username": username, "password": password})
    assert response.status_code == 302, response.text
    home = http.get(f"{base_url}/console/", timeout=5).text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home).group(1)
    return Console(base_url, http, csrf)


def shopper(emulator, base_url: str) -> ShopperClient:
    """The emulator's shopper, pushing to this live server's webhook."""
    if emulator.push_url is None:
        emulator.push_url = f"{base_url}/wechat"
    return ShopperClient(emulator)


def first_openid(emulator) -> str:
    return next(iter(emulator.shoppers))


def conversation_of(app, openid: str) -> Conversation | None:
    from sqlalchemy import select

    with uow(app) as session:
        found = session.scalar(select(Conversation).where(Conversation.openid == openid)
                               .order_by(Conversation.id.desc()))
        if found is not None:
            session.expunge(found)
        return found


def customer_service_messages(emulator, openid: str) -> list[dict]:
    """What the shopper saw arrive as customer-service messages (the agents' answers, the menu)."""
    return [m for m in emulator.shoppers[openid].chat if m.get("via") == "customer_service"]


class EventStream:
    """An SSE connection read on a thread: frames arrive in a queue as (event name, data)."""

    def __init__(self, console: Console, base_url: str | None = None) -> None:
        import json
        import queue
        import threading

        self.frames: queue.Queue = queue.Queue()
        self.comments: queue.Queue = queue.Queue()
        url = (base_url or console.base_url) + "/console/api/desk/stream"
        self.response = console.http.get(url, stream=True, timeout=(5, 60))
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        try:  # the socket under http.client's buffered reader, to hang up from another thread
            self.sock = self.response.raw._fp.fp.raw._sock
        except AttributeError:
            self.sock = None

        def read() -> None:
            name, data = "message", []
            try:
                for line in self.response.iter_lines(decode_unicode=True):
                    if line is None:
                        continue
                    if line.startswith(":"):
                        self.comments.put(line)
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "":
                        if data:
                            self.frames.put((name, json.loads("\n".join(data))))
                        name, data = "message", []
            except Exception:  # closed by the test
                pass

        threading.Thread(target=read, daemon=True).start()
        kind, _ = self.next(timeout=10)
        assert kind == "ready"  # subscribed: nothing published from now on is missed

    def next(self, timeout: float = 5.0) -> tuple[str, dict]:
        return self.frames.get(timeout=timeout)

    def wait_for(self, predicate, timeout: float = 8.0) -> dict:
        """The first desk event matching `predicate`; AssertionError if none comes in time."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout}s; saw {seen}")
            try:
                kind, event = self.next(timeout=left)
            except queue.Empty:
                continue
            seen.append(event)
            if kind == "desk" and predicate(event):
                return event

    def drain(self, wait: float = 0.5) -> list[dict]:
        import queue
        import time

        time.sleep(wait)
        found = []
        while True:
            try:
                found.append(self.frames.get_nowait()[1])
            except queue.Empty:
                return found

    def close(self) -> None:
        """Hang up as a browser tab does: shut the socket (which wakes the reader thread), then close."""
        import socket

        if self.sock is not None:
            sock = self.sock
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
