"""The mini-program API end to end: real HTTP to the live server, WeChat played by the emulator.

Codes are minted the way the phone mints them (wx.login, the getPhoneNumber button) through the
emulator's control endpoints. Every response any test sees is checked against the OpenAPI
document the service serves, and none may contain WeChat's session_key.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest
import requests
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select

from members import coupons, ledger, points
from members.identity import OA, get_member, resolve_member
from members.models import Member
from members.program import load_program
from wx_service.edges.api.mp_openapi import SPEC
from wx_service.ground import redis_keys
from wx_service.ground.db import utcnow

TIMEOUT = 15


class Client:
    """A mini-program: calls the API and checks every answer against the spec."""

    def __init__(self, base_url: str, emulator) -> None:
        self.base = base_url
        self.api = f"{base_url}/api/mp"
        self.emulator = emulator
        self.token: str | None = None
        self.seen: list[str] = []

    def call(self, method: str, path: str, *, token: str | None = None, check: bool = True,
             **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        token = token or self.token
        if token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        response = requests.request(method, self.api + path, headers=headers, timeout=TIMEOUT, **kwargs)
        self.seen.append(response.text)
        assert response.headers["Content-Type"].startswith("application/json"), response.text
        assert response.headers["Cache-Control"] == "no-store"
        if check:
            check_against_spec(method, path.split("?")[0], response)
        return response

    def login_code(self, openid: str) -> str:
        return requests.post(f"{self.base}/_emulator/mp/login-code", json={"openid": openid}, timeout=TIMEOUT).json()["code"]

    def phone_code(self, openid: str, phone: str, **extra: Any) -> str:
        return requests.post(f"{self.base}/_emulator/mp/phone-code", json={"openid": openid, "phone": phone, **extra},
                             timeout=TIMEOUT).json()["code"]

    def login(self, openid: str) -> dict[str, Any]:
        response = self.call("POST", "/login", json={"code": self.login_code(openid)})
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]
        return response.json()


def _schema_for(method: str, path: str, status: int) -> dict[str, Any]:
    operation = SPEC["paths"][path][method.lower()]
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which the spec does not document"
    return response["content"]["application/json"]["schema"]


def check_against_spec(method: str, path: str, response: requests.Response) -> None:
    """The body matches the documented schema for this status; every date-time is UTC ISO-8601."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "components": SPEC["components"], **_schema_for(method, path, response.status_code)}
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(response.json())
    if path != "/openapi.json":
        _check_times(response.json())


def _check_times(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") and item is not None:
                parsed = datetime.fromisoformat(item)
                assert parsed.utcoffset() == timedelta(0), item
            _check_times(item)
    elif isinstance(value, list):
        for item in value:
            _check_times(item)


@pytest.fixture
def mp(base_url, emulator):
    client = Client(base_url, emulator)
    yield client
    keys = [s.mp_session_key for s in emulator.shoppers.values() if s.mp_session_key]
    for text in client.seen:
        for key in keys:
            assert key not in text, "the session_key left the server"


def shoppers(emulator):
    return list(emulator.shoppers.values())


def in_app(app, wx, fn):
    with app.app_context(), wx.db.unit_of_work():
        return fn()


def award(member_id: int, fen: int, key: str) -> None:
    points.award_for_payment(member_id, fen, key, utcnow())


# -- login and sessions -------------------------------------------------------------------------
def test_login_gives_a_token_and_the_member(mp, emulator, app, wx):
    shopper = shoppers(emulator)[0]
    out = mp.login(shopper.openid)
    assert out["token"] and out["expires_in"] > 0
    assert out["member"]["level"]["code"] == load_program().levels[0].code
    assert out["member"]["points_balance"] == 0 and out["member"]["has_phone"] is False
    assert "session_key" not in str(out) and shopper.mp_session_key not in str(out)
    assert mp.call("GET", "/profile").json()["member"]["id"] == out["member"]["id"]
    # the session_key is kept, server-side, under the mini-program openid, with a TTL
    key = redis_keys.mp_session_key(wx.settings.mp_appid, shopper.mp_openid, 0).name
    assert wx.redis.get(key).decode() == shopper.mp_session_key
    assert 0 < wx.redis.ttl(key) <= 7 * 24 * 3600
    # and the member is known by the mini-program openid and the unionid
    member = in_app(app, wx, lambda: get_member(out["member"]["id"]))
    assert member.unionid == shopper.unionid


def test_logging_in_again_is_the_same_member_with_a_new_token(mp, emulator):
    shopper = shoppers(emulator)[0]
    first = mp.login(shopper.openid)
    second = mp.login(shopper.mp_openid)
    assert first["member"]["id"] == second["member"]["id"]
    assert first["token"] != second["token"]
    assert mp.call("GET", "/profile", token=first["token"]).status_code == 200


def test_a_login_code_works_once(mp, emulator):
    code = mp.login_code(shoppers(emulator)[0].openid)
    assert mp.call("POST", "/login", json={"code": code}).status_code == 200
    again = mp.call("POST", "/login", json={"code": code})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_code" and again.json()["wechat_errcode"] == 40163
    unknown = mp.call("POST", "/login", json={"code": "0" * 32})
    assert unknown.status_code == 400 and unknown.json()["wechat_errcode"] == 40029


def test_an_expired_login_code_is_refused(mp, emulator, base_url):
    code = mp.login_code(shoppers(emulator)[0].openid)
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 301}, timeout=TIMEOUT)
    assert mp.call("POST", "/login", json={"code": code}).json()["wechat_errcode"] == 40029


@pytest.mark.parametrize("auth", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 300])
def test_bad_or_missing_token_is_401(mp, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    for path in ("/profile", "/level-progress", "/points", "/coupons"):
        response = mp.call("GET", path, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert mp.call("POST", "/phone", headers=headers, json={"code": "x"}).status_code == 401


def test_an_expired_session_is_401(mp, emulator, wx):
    mp.login(shoppers(emulator)[0].openid)
    name = redis_keys.mp_session(wx.settings.mp_appid, hashlib.sha256(mp.token.encode()).hexdigest(), 0).name
    assert wx.redis.ttl(name) > 6 * 24 * 3600
    wx.redis.pexpire(name, 1)
    time.sleep(0.05)
    assert mp.call("GET", "/profile").status_code == 401


def test_the_token_itself_is_not_a_redis_key(mp, emulator, wx):
    mp.login(shoppers(emulator)[0].openid)
    assert not [k for k in wx.redis.keys("*") if mp.token.encode() in k]


def test_wechat_system_busy_on_login_is_502_json(mp, emulator, base_url):
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "jscode2session", "errcode": -1}, timeout=TIMEOUT)
    response = mp.call("POST", "/login", json={"code": mp.login_code(shoppers(emulator)[0].openid)})
    assert response.status_code == 502
    assert response.json()["error"] == "wechat_unavailable" and response.json()["wechat_errcode"] == -1


def test_wechat_rate_limit_on_login_is_429(mp, emulator, base_url):
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "jscode2session", "errcode": 45011}, timeout=TIMEOUT)
    response = mp.call("POST", "/login", json={"code": mp.login_code(shoppers(emulator)[0].openid)})
    assert response.status_code == 429 and response.json()["wechat_errcode"] == 45011


def test_wechat_slower_than_5_seconds_is_502(mp, emulator, base_url):
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "jscode2session", "delay": 6}, timeout=TIMEOUT)
    started = time.monotonic()
    response = mp.call("POST", "/login", json={"code": mp.login_code(shoppers(emulator)[0].openid)})
    assert response.status_code == 502 and response.json()["error"] == "wechat_unavailable"
    assert time.monotonic() - started < 6


def test_emulator_code2session_follows_the_reference(base_url, emulator):
    shopper = shoppers(emulator)[0]
    code = requests.post(f"{base_url}/_emulator/mp/login-code", json={"openid": shopper.openid}).json()["code"]
    url = f"{base_url}/_emulator/sns/jscode2session"
    query = {"appid": emulator.appid, "secret": emulator.secret, "js_code": code, "grant_type": "authorization_code"}
    assert requests.get(url, params={**query, "secret": "wrong"}).json()["errcode"] == 40125
    assert requests.get(url, params={**query, "grant_type": "client_credential"}).json()["errcode"] == 40002
    out = requests.get(url, params=query).json()
    assert out["openid"] == shopper.mp_openid != shopper.openid and out["unionid"] == shopper.unionid
    import base64

    assert len(base64.b64decode(out["session_key"])) == 16
    assert requests.get(url, params=query).json() == {"errcode": 40163, "errmsg": "code been used"}


# -- malformed requests ---------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"{", b"[]", b'"code"', b"", b'{"code": 5}', b'{"code": ""}'])
def test_malformed_login_body_is_400_json(mp, body):
    response = mp.call("POST", "/login", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=101", "per_page=-1"])
def test_bad_paging_is_400(mp, emulator, query):
    mp.login(shoppers(emulator)[0].openid)
    assert mp.call("GET", f"/points?{query}").status_code == 400


def test_unknown_paths_answer_json_404(mp):
    response = mp.call("GET", "/nope", check=False)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


# -- phone binding --------------------------------------------------------------------------------
def test_phone_binding(mp, emulator, app, wx):
    shopper = shoppers(emulator)[0]
    member_id = mp.login(shopper.openid)["member"]["id"]
    response = mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")})
    assert response.status_code == 200, response.text
    assert response.json()["member"]["phone_masked"] == "138****8000"
    assert "13800138000" not in response.text
    assert in_app(app, wx, lambda: get_member(member_id).phone) == "13800138000"
    # binding the same phone again is harmless
    again = mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")})
    assert again.status_code == 200


def test_a_phone_code_is_single_use_and_belongs_to_its_user(mp, emulator):
    me, other = shoppers(emulator)[:2]
    mp.login(me.openid)
    code = mp.phone_code(me.openid, "13800138000")
    assert mp.call("POST", "/phone", json={"code": code}).status_code == 200
    assert mp.call("POST", "/phone", json={"code": code}).json()["wechat_errcode"] == 40163
    stolen = mp.phone_code(other.openid, "13900139000")
    response = mp.call("POST", "/phone", json={"code": stolen})
    assert response.status_code == 400 and response.json()["error"] == "invalid_code"
    assert mp.call("GET", "/profile").json()["member"]["phone_masked"] == "138****8000"


def test_a_watermark_for_another_app_is_refused(mp, emulator):
    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    code = mp.phone_code(shopper.openid, "13800138000", appid="wx0000000000000000")
    response = mp.call("POST", "/phone", json={"code": code})
    assert response.status_code == 502 and response.json()["error"] == "wechat_bad_response"
    assert mp.call("GET", "/profile").json()["member"]["has_phone"] is False


def test_wechat_failure_on_phone_is_502(mp, emulator, base_url):
    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "getuserphonenumber", "errcode": -1}, timeout=TIMEOUT)
    response = mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")})
    assert response.status_code == 502 and response.json()["wechat_errcode"] == -1


def test_oa_member_logging_in_to_the_mini_program_is_the_same_member(mp, emulator, app, wx):
    shopper = shoppers(emulator)[0]

    def oa_member() -> int:
        member = resolve_member(OA, shopper.openid, shopper.unionid)
        award(member.id, 12_300, "oa-first")
        return member.id
    member_id = in_app(app, wx, oa_member)
    out = mp.login(shopper.openid)
    assert out["member"]["id"] == member_id
    assert out["member"]["points_balance"] == 123
    with app.app_context(), wx.db.unit_of_work() as session:
        assert session.query(Member).count() == 1


def test_binding_a_phone_merges_a_duplicate_member_without_losing_points(mp, emulator, app, wx):
    shopper = shoppers(emulator)[0]
    mp_member = mp.login(shopper.openid)["member"]["id"]

    def setup() -> int:
        award(mp_member, 10_000, "mp-order")  # 100 points
        counter = Member(phone="13800138000", level=load_program().levels[0].code, joined_at=utcnow() - timedelta(days=400))
        wx.db.session.add(counter)
        wx.db.session.flush()
        award(counter.id, 25_000, "counter-order")  # 250 points
        points.redeem_points(counter.id, 50, "counter-gift")
        return counter.id
    counter_id = in_app(app, wx, setup)

    response = mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")})
    assert response.status_code == 200, response.text
    member = response.json()["member"]
    assert member["points_balance"] == 100 + 250 - 50
    assert member["id"] == min(mp_member, counter_id)
    # the session keeps working after the merge, and sees the survivor
    profile = mp.call("GET", "/profile").json()["member"]
    assert profile["id"] == member["id"] and profile["points_balance"] == 300

    def check() -> None:
        survivor = get_member(member["id"])
        assert survivor.points_balance == ledger.ledger_sum(survivor.id) == 300
        assert survivor.phone == "13800138000" and survivor.unionid == shopper.unionid
        gone = wx.db.session.get(Member, max(mp_member, counter_id))
        assert gone.status == "merged" and gone.points_balance == 0 == ledger.ledger_sum(gone.id)
    in_app(app, wx, check)
    reasons = [e["reason"] for e in mp.call("GET", "/points?per_page=100").json()["entries"]]
    assert "merge_in" in reasons


def test_a_phone_bound_to_another_wechat_user_is_409_and_changes_nothing(mp, emulator, app, wx):
    me, other = shoppers(emulator)[:2]
    other_client = Client(mp.base, emulator)
    other_id = other_client.login(other.openid)["member"]["id"]
    assert other_client.call("POST", "/phone", json={"code": other_client.phone_code(other.openid, "13800138000")}).status_code == 200
    my_id = mp.login(me.openid)["member"]["id"]
    in_app(app, wx, lambda: (award(my_id, 5_000, "mine"), award(other_id, 7_000, "theirs")))

    response = mp.call("POST", "/phone", json={"code": mp.phone_code(me.openid, "13800138000")})
    assert response.status_code == 409 and response.json()["error"] == "phone_bound_to_another_member"
    assert "13800138000" not in response.text

    def check() -> None:
        mine, theirs = get_member(my_id), get_member(other_id)
        assert (mine.id, mine.phone, mine.points_balance, mine.status) == (my_id, None, 50, "active")
        assert (theirs.id, theirs.phone, theirs.points_balance, theirs.status) == (other_id, "13800138000", 70, "active")
    in_app(app, wx, check)


# -- reading the membership -------------------------------------------------------------------------
def test_points_history_is_paged_newest_first_with_a_total(mp, emulator, app, wx):
    member_id = mp.login(shoppers(emulator)[0].openid)["member"]["id"]

    def setup() -> None:
        for i in range(7):
            award(member_id, 1_000 * (i + 1), f"order-{i}")
        points.redeem_points(member_id, 5, "gift-1")
    in_app(app, wx, setup)

    first = mp.call("GET", "/points?page=1&per_page=3").json()
    assert (first["total"], first["page"], first["per_page"], len(first["entries"])) == (8, 1, 3, 3)
    assert first["entries"][0]["reason"] == "redemption" and first["entries"][0]["delta"] == -5
    assert first["balance"] == first["entries"][0]["balance_after"] == sum(range(10, 80, 10)) - 5
    pages = [first] + [mp.call("GET", f"/points?page={p}&per_page=3").json() for p in (2, 3, 4)]
    ids = [e["id"] for page in pages for e in page["entries"]]
    assert len(ids) == 8 and ids == sorted(ids, reverse=True)
    assert pages[3]["entries"] == [] and pages[3]["total"] == 8
    default = mp.call("GET", "/points").json()
    assert default["per_page"] == 20 and len(default["entries"]) == 8


def test_level_progress(mp, emulator, app, wx):
    member_id = mp.login(shoppers(emulator)[0].openid)["member"]["id"]
    levels = load_program().levels
    in_app(app, wx, lambda: award(member_id, 120_000, "big-order"))
    out = mp.call("GET", "/level-progress").json()
    assert out["level"]["code"] == levels[0].code and out["spend_fen_12_months"] == 120_000
    assert out["next_level"]["code"] == levels[1].code
    assert out["fen_to_next"] == levels[1].min_spend_fen - 120_000
    assert out["benefits"] == list(levels[0].benefits)
    in_app(app, wx, lambda: award(member_id, levels[1].min_spend_fen, "bigger-order"))
    out = mp.call("GET", "/level-progress").json()
    assert out["level"]["code"] == levels[1].code
    assert mp.call("GET", "/profile").json()["member"]["level"]["code"] == levels[1].code


def test_coupons_listing(mp, emulator, app, wx):
    member_id = mp.login(shoppers(emulator)[0].openid)["member"]["id"]

    def setup() -> None:
        coupons.issue(member_id, "promotion", "满减券", 5_000, 30, "promo:a")
        coupons.issue(member_id, "promotion", "停车券", 1_000, 3, "promo:b")
        used, _ = coupons.issue(member_id, "promotion", "已用", 2_000, 30, "promo:c")
        coupons.redeem(used.code, None)
        coupons.issue(member_id, "promotion", "过期", 2_000, 1, "promo:d", now=utcnow() - timedelta(days=5))
    in_app(app, wx, setup)
    listed = mp.call("GET", "/coupons").json()["coupons"]
    assert [c["title"] for c in listed] == ["停车券", "满减券"]
    assert listed[1]["value_fen"] == 5_000 and len(listed[1]["code"]) == 12


def test_session_key_never_appears_in_any_response(mp, emulator, app, wx):
    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    member_id = mp.call("GET", "/profile").json()["member"]["id"]
    in_app(app, wx, lambda: award(member_id, 9_900, "o1"))
    mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13700137000")})
    for path in ("/profile", "/level-progress", "/points", "/coupons", "/openapi.json"):
        mp.call("GET", path)
    assert shopper.mp_session_key
    for text in mp.seen:
        assert shopper.mp_session_key not in text and "session_key" not in text


# -- the spec -----------------------------------------------------------------------------------------
def test_the_served_spec_is_valid_openapi_3_1_and_covers_every_route(mp, app):
    served = mp.call("GET", "/openapi.json").json()
    assert served["openapi"].startswith("3.1")
    validate_spec(served)
    assert served["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "the opaque token returned by POST /login"}
    # Flask's <converter:name> is OpenAPI's {name}.
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/mp")), method.lower())
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/mp/") and "<path:" not in rule.rule  # the JSON 404 catch-all
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in served["paths"].items() for method in ops}
    assert routes == documented
    for path, ops in served["paths"].items():
        for method, op in ops.items():
            if path not in ("/login", "/openapi.json"):
                assert op["security"] == [{"bearer": []}] and "401" in op["responses"], (path, method)


# -- concurrency and logs -----------------------------------------------------------------------------
def test_concurrent_first_logins_make_one_member(mp, emulator, app, wx):
    from concurrent.futures import ThreadPoolExecutor

    shopper = shoppers(emulator)[0]
    codes = [mp.login_code(shopper.openid) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda c: requests.post(f"{mp.api}/login", json={"code": c}, timeout=TIMEOUT), codes))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.json()["member"]["id"] for a in answers}) == 1
    with app.app_context(), wx.db.unit_of_work() as session:
        assert session.query(Member).count() == 1


def test_session_key_is_never_logged(mp, emulator, base_url, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")})
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "getuserphonenumber", "errcode": -1}, timeout=TIMEOUT)
    assert mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")}).status_code == 502
    assert shopper.mp_session_key and caplog.records
    assert shopper.mp_session_key not in caplog.text
    assert "13800138000" not in caplog.text


def test_a_separate_mini_program_app_uses_its_own_appid_secret_and_token(mp, emulator, app, wx, monkeypatch):
    """In production the mini-program is its own WeChat app: code2Session, its access token, the
    watermark check and the session keys all use WECHAT_MP_APPID, not the OA's."""
    import dataclasses

    mp_appid, mp_secret = "wx" + "ab" * 8, "mini-program-secret"
    monkeypatch.setattr(wx, "settings", dataclasses.replace(wx.settings, WECHAT_MP_APPID=mp_appid,
                                                            WECHAT_MP_SECRET=mp_secret))
    monkeypatch.setitem(app.extensions, "wx_mp_client", None)
    monkeypatch.setattr(emulator, "appid", mp_appid)  # the emulator now plays the mini-program's app
    monkeypatch.setattr(emulator, "secret", mp_secret)
    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    assert mp.call("POST", "/phone", json={"code": mp.phone_code(shopper.openid, "13800138000")}).status_code == 200
    names = {k.decode() for k in wx.redis.keys("*")}
    assert any(n.startswith(f"wx:{mp_appid}:mp:session:") for n in names)
    assert f"wx:{mp_appid}:token:access" in names and f"wx:{wx.settings.WECHAT_APPID}:token:access" not in names


def test_a_mini_program_member_who_follows_the_oa_is_linked_by_unionid(app, base_url, emulator, wx, run_jobs):
    """Mini-program first, then the OA: the follow's profile job links the OA openid by unionid."""
    from members.identity import OA, member_for_openid

    shopper = next(iter(emulator.shoppers.values()))
    code = requests.post(f"{base_url}/_emulator/mp/login-code", json={"openid": shopper.openid}).json()["code"]
    login = requests.post(f"{base_url}/api/mp/login", json={"code": code})
    assert login.status_code == 200, login.text
    requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": shopper.openid})
    run_jobs()
    with app.app_context():
        member = member_for_openid(OA, shopper.openid)
        assert member is not None and member.unionid == shopper.unionid


def test_the_card_can_be_claimed_from_the_mini_program(mp, emulator, app, wx, base_url):
    """wx.addCard with the signed cardExt claims the card; the OA webhook records it for the same member."""
    from members.identity import MP, member_for_openid
    from members.models import MemberCard
    from wx_service.edges.cli.members import push_card

    shopper = shoppers(emulator)[0]
    mp.login(shopper.openid)
    assert mp.call("GET", "/card/add-params").status_code == 404  # the card was never pushed
    requests.get(f"{base_url}/healthz", timeout=TIMEOUT)
    with app.app_context():
        push_card()
    params = mp.call("GET", "/card/add-params")
    assert params.status_code == 200, params.text
    card = params.json()["card_list"][0]
    tampered = json.loads(card["cardExt"]) | {"nonce_str": "other"}
    refused = requests.post(f"{base_url}/_emulator/mp/add-card", timeout=TIMEOUT, json={
        "openid": shopper.openid, "card_id": card["cardId"], "card_ext": json.dumps(tampered)})
    assert refused.status_code == 400 and "signature" in refused.json()["errMsg"]
    claimed = requests.post(f"{base_url}/_emulator/mp/add-card", timeout=TIMEOUT, json={
        "openid": shopper.openid, "card_id": card["cardId"], "card_ext": card["cardExt"]})
    assert claimed.status_code == 200 and claimed.json()["delivered"], claimed.text
    with app.app_context(), wx.db.unit_of_work() as session:
        held = session.scalars(select(MemberCard)).all()
        assert len(held) == 1 and held[0].outer_str == "mini_program"
        assert held[0].member_id == member_for_openid(MP, shopper.mp_openid).id
