"""Property-based fuzzing of every entry point, each input well authenticated so that what is
tested is the body: the OA webhook in its three modes (valid signatures, valid encryption), both
pay notifications (signed by WeChat Pay's key, over arbitrary JSON and over arbitrary resources),
the mini-program API (a live session), the console's JSON APIs (signed in, with CSRF), and the
emulator's WeChat API (a valid access token).

Invariants for every input (tests/fuzz/harness.py): never a 5xx, never a traceback in the log,
and a refused input changes nothing. The CI profile runs a bounded, derandomized number of
examples; `bench/fuzz_entry_points.py` runs the `long` profile (10⁵ inputs in all).
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from members import staff as staff_service
from payments.wxpay_v3 import encrypt_resource
from tests.fuzz.harness import COUNTS, Harness, deep_json, dumps, huge_text, json_values, mutations, odd_text
from tests.integration.members_helpers import make_member, make_staff, uow
from tests.integration.test_pay_notify import APIV3_KEY, keys, make_order, pay, refund_resource, signed_headers, transaction  # noqa: F401,F811 (fixtures)
from wx_service.edges.api import mp_sessions
from wx_service.edges.api.mp_openapi import SPEC
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap

# -- the OA webhook ----------------------------------------------------------------------------------

PUSH_NAMES = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
              "Ticket", "Latitude", "Longitude", "PicUrl", "MediaId", "Encrypt", "CardId", "UserCardCode"]
push_values = odd_text | huge_text.map(lambda s: s[:20_000]) | st.integers() | st.sampled_from(
    ["text", "event", "image", "subscribe", "CLICK", "SCAN", "qrscene_", "user_get_card", "location", "voice"])
push_fields = st.lists(st.tuples(st.sampled_from(PUSH_NAMES) | st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
                                 push_values), max_size=12)


def _text_push(emulator, content: str) -> list:
    return [("ToUserName", emulator.original_id), ("FromUserName", "oFuzz" + secrets.token_hex(8)),
            ("CreateTime", int(time.time())), ("MsgType", "text"), ("Content", content),
            ("MsgId", emulator.next_msg_id())]


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _xml_bodies(emulator):
    """Pushes WeChat could never send: arbitrary fields, one field of a real push made hostile,
    and things that are not a push at all."""
    def one_field_wrong(args):
        index, value, drop = args
        fields = _text_push(emulator, "你好")
        if drop:
            del fields[index % len(fields)]
        else:
            fields[index % len(fields)] = (fields[index % len(fields)][0], value)
        return build_push_xml(fields)

    return st.one_of(
        push_fields.map(build_push_xml),
        st.tuples(st.integers(0, 5), push_values, st.booleans()).map(one_field_wrong),
        odd_text,
        st.integers(10, 3_000).map(lambda n: "<xml>" + "<a>" * n + "</a>" * n + "</xml>"),
        st.sampled_from(["", "<xml>", "<xml></xml>", "<xml><ToUserName/></xml>", '{"MsgType": "text"}',
                         "<?xml version='1.0' encoding='gbk'?><xml/>", "<xml><![CDATA[x]]></xml>"]),
    )


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_webhook_bodies(app, emulator, mode):
    client = app.test_client()
    with Harness(app, f"webhook:{mode}") as harness:
        @given(xml=_xml_bodies(emulator))
        def run(xml: str) -> None:
            try:
                query, body = sign_and_wrap(emulator, xml, mode)
            except UnicodeEncodeError:  # lone surrogates: not UTF-8, sent as the bytes they make
                query, _ = sign_and_wrap(emulator, "<xml/>", "plaintext")
                body = xml.encode("utf-8", "surrogatepass")
                if mode != "plaintext":
                    query, body = sign_and_wrap(emulator, xml.encode("utf-8", "replace").decode(), mode)
            harness.check(lambda: client.post("/wechat", query_string=query, data=body,
                                              headers={"Content-Type": "text/xml"}))
        run()


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_webhook_envelopes(app, emulator, mode):
    """Well-signed envelopes whose Encrypt (and the rest) is anything at all."""
    client = app.test_client()
    with Harness(app, f"webhook-envelope:{mode}") as harness:
        @given(encrypt=odd_text.filter(_utf8) | st.binary(max_size=512).map(lambda b: base64.b64encode(b).decode()),
               extra=push_fields)
        def run(encrypt: str, extra: list) -> None:
            from wx_service.ground.protocol.signature import sign

            ts, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
            query = {"signature": sign(emulator.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                     "encrypt_type": "aes", "msg_signature": sign(emulator.token, ts, nonce, encrypt)}
            body = build_push_xml([("ToUserName", emulator.original_id), ("Encrypt", encrypt), *extra])
            harness.check(lambda: client.post("/wechat", query_string=query, data=body.encode("utf-8", "surrogatepass"),
                                              headers={"Content-Type": "text/xml"}))
        run()


# -- WeChat Pay notifications ------------------------------------------------------------------------

def _send_signed(client, keys, path: str, body: bytes):
    return client.post(path, data=body, headers=signed_headers(keys["platform"], body))


@pytest.mark.parametrize("path", ["/pay/notify", "/pay/refund-notify"])
def test_pay_notification_envelopes(app, keys, pay, path):
    """Any JSON at all, correctly signed."""
    client = app.test_client()
    with Harness(app, f"pay-envelope:{path}") as harness:
        @given(body=json_values.map(dumps) | deep_json.map(str.encode) | st.binary(max_size=256))
        def run(body: bytes) -> None:
            harness.check(lambda: _send_signed(client, keys, path, body))
        run()


def _notification(resource: dict | bytes, refund: bool) -> bytes:
    """A real envelope around `resource`: a dict is sent as JSON, bytes as they are (any text)."""
    plaintext = resource if isinstance(resource, bytes) else dumps(resource)
    return json.dumps({"id": str(uuid.uuid4()), "create_time": "2026-11-22T17:00:01+08:00",
                       "resource_type": "encrypt-resource",
                       "event_type": "REFUND.SUCCESS" if refund else "TRANSACTION.SUCCESS",
                       "resource": encrypt_resource(APIV3_KEY, plaintext,
                                                    associated_data="refund" if refund else "transaction",
                                                    original_type="refund" if refund else "transaction")}).encode()


@pytest.mark.parametrize("refund", [False, True], ids=["payment", "refund"])
def test_pay_notification_resources(app, keys, pay, refund):
    """A real envelope, signed and encrypted, around a resource of any shape: for an order that
    exists, one field of a genuine resource made wrong, or anything at all."""
    client = app.test_client()
    out_trade_no = "NFUZZ" + uuid.uuid4().hex[:16]
    make_order(app, out_trade_no, 10000)
    base = (refund_resource(out_trade_no, "R" + out_trade_no, 10000, 100) if refund
            else transaction(out_trade_no, 10000))
    path = "/pay/refund-notify" if refund else "/pay/notify"
    with Harness(app, f"pay-resource:{path}") as harness:
        @given(resource=mutations(base) | json_values.map(dumps) | deep_json.map(str.encode)
               | odd_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
        def run(resource) -> None:
            harness.check(lambda: _send_signed(client, keys, path, _notification(resource, refund)))
        run()


# -- the mini-program API ----------------------------------------------------------------------------

MP_BODIES = {"/login": {"code": "0a3Fuzz"}, "/phone": {"code": "0b4Fuzz"},
             "/pay/orders": {"amount_fen": 100, "description": "咖啡", "source": "qr:fuzz"}}


@pytest.fixture
def mp_token(app):
    member_id = make_member(app)
    with app.app_context():
        return mp_sessions.create(member_id, "oMpFuzz" + secrets.token_hex(6), "session-key").token


@pytest.mark.parametrize("path", list(MP_BODIES))
def test_mini_program_bodies(app, mp_token, path):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {mp_token}", "Content-Type": "application/json"}
    with Harness(app, f"mp:{path}") as harness:
        @given(body=mutations(MP_BODIES[path]).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=128))
        def run(body: bytes) -> None:
            harness.check(lambda: client.post("/api/mp" + path, data=body, headers=headers))
        run()


def test_mini_program_queries(app, mp_token):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {mp_token}"}
    with Harness(app, "mp:/points?") as harness:
        @given(page=odd_text | st.integers().map(str), per_page=odd_text | st.integers().map(str))
        def run(page: str, per_page: str) -> None:
            # Percent-encoded by hand: a lone surrogate goes as the bytes it makes, as a hostile client's would.
            query = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in
                             (("page", page), ("per_page", per_page)))
            harness.check(lambda: client.get(f"/api/mp/points?{query}", headers=headers))
        run()


def _integral_floats(value) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf")) and value.is_integer()
    if isinstance(value, dict):
        return any(_integral_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_integral_floats(v) for v in value)
    return False


def _outside_json_schema(value) -> bool:
    """Bodies JSON Schema cannot judge the way the strict shapes do: integral floats (JSON Schema
    counts 100.0 as an integer, the shapes do not) and unpaired surrogate escapes (refused when
    the body is parsed, as RFC 8259 allows)."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf")) and value.is_integer()
    if isinstance(value, str):
        return not _utf8(value)
    if isinstance(value, dict):
        return any(_outside_json_schema(k) or _outside_json_schema(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_outside_json_schema(v) for v in value)
    return False


def test_the_spec_and_the_validation_agree_on_pay_order_bodies(app, mp_token, monkeypatch):
    """What the OpenAPI request schema accepts, the view accepts, and what it refuses the view
    refuses as bad_request. WeChat Pay is switched off for the run: an accepted body gets a 503
    (payment_unavailable), never a 400."""
    from payments import jsapi
    from payments.config import PaymentsOff

    def off(*_args, **_kwargs):
        raise PaymentsOff("off for this test")

    monkeypatch.setattr(jsapi, "open_jsapi_order", off)
    schema = {**SPEC["components"]["schemas"]["PayOrderRequest"], "components": SPEC["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {mp_token}", "Content-Type": "application/json"}

    @given(body=mutations(MP_BODIES["/pay/orders"]))
    def run(body: dict) -> None:
        if _outside_json_schema(body):
            return
        response = client.post("/api/mp/pay/orders", data=dumps(body), headers=headers)
        COUNTS["mp:/pay/orders spec agreement"] += 1
        refused = response.status_code == 400 and response.get_json()["error"] == "bad_request"
        assert refused != validator.is_valid(body), (body, response.status_code, response.get_json())
        assert response.status_code in (400, 503), response.status_code
    run()


# -- the console's JSON APIs -------------------------------------------------------------------------

@pytest.fixture
def console(app):
    """A test client signed in to the console, and its CSRF token."""
    make_staff(app, "fuzz")
    with uow(app):
        staff_service.set_password("fuzz", "fuzz-pass-1234")
        for role in (staff_service.CASHIER, staff_service.AGENT):  # the till, the counter and the desk
            staff_service.grant_role("fuzz", role)
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/login", data={"csrf_token": token, "username": "fuzz",
                                               "password": "fuzz-pass-1234"}).status_code in (200, 302)
    page = client.get("/console/counter/", query_string={"counter": "1F-fuzz"}).get_data(as_text=True)
    return client, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


CONSOLE_BODIES = {"/console/counter/api/orders": {"amount": "12.80", "description": "口红", "counter": "1F-fuzz"},
                  # Not a payment code: a body of the right shape is refused by the cashier's rules
                  # (400) instead of starting a payment-code flow that polls in the background.
                  "/console/cashier/api/charges": {"amount": "12.80", "auth_code": "not-a-code",
                                                   "counter": "cashier", "description": "x"}}


@pytest.mark.parametrize("path", list(CONSOLE_BODIES))
def test_console_json_bodies(app, console, path):
    client, csrf = console
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    with Harness(app, f"console:{path}") as harness:
        @given(body=mutations(CONSOLE_BODIES[path]).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=128))
        def run(body: bytes) -> None:
            harness.check(lambda: client.post(path, data=body, headers=headers))
        run()


# -- the customer-service desk's JSON APIs --------------------------------------------------------------

@pytest.fixture
def desk_console(app, console):
    """The fuzz staff member is an agent holding one conversation whose shopper just wrote."""
    from members.models import Staff
    from service_desk import intake, service
    from service_desk.models import Agent, Team

    with uow(app) as session:
        team = Team(code="fuzz-desk", name="fuzz desk")
        session.add(team)
        session.flush()
        staff_id = session.scalar(select(Staff.id).where(Staff.username == "fuzz"))
        agent = Agent(staff_id=staff_id, team_id=team.id, status="online", max_open=50, open_load=0)
        session.add(agent)
        session.flush()
        intake.ask_for_person("oFuzzShopper", "keyword")  # offered to the only agent online
        conversation_id = service.open_conversation_of("oFuzzShopper").id
        service.take(conversation_id, agent.id)
    return (*console, conversation_id)


DESK_BODIES = {"answer": {"body": "您好，请问有什么可以帮您", "client_key": "fuzz-key-0001"},
               "answer-template": {"body": "您好", "client_key": "fuzz-key-0002"},
               "note": {"body": "a private note"},
               "transfer": {"to_agent": 999, "note": "over to you"},
               "/status": {"status": "online"},
               "/faq": {"question": "停车", "pattern": "停车|车位", "is_regex": False, "answer": "B2", "priority": 1},
               "/canned": {"shortcut": "/hi", "body": "您好", "shared": True}}


@pytest.mark.parametrize("action", list(DESK_BODIES))
def test_desk_json_bodies(app, desk_console, action):
    client, csrf, conversation_id = desk_console
    api = "/console/api/desk"
    path = f"{api}{action}" if action.startswith("/") else f"{api}/conversations/{conversation_id}/{action}"
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    with Harness(app, f"desk:{action}") as harness:
        @given(body=mutations(DESK_BODIES[action]).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=128))
        def run(body: bytes) -> None:
            harness.check(lambda: client.post(path, data=body, headers=headers))
        run()


@pytest.mark.parametrize("query", ["/search?q=", "/conversations?view=", "/metrics?start="])
def test_desk_queries(app, desk_console, query):
    client, _csrf, _ = desk_console
    base = "/console/desk" if query.startswith("/metrics") else "/console/api/desk"
    with Harness(app, f"desk-query:{query}") as harness:
        @given(value=st.text(max_size=200))
        def run(value: str) -> None:
            harness.check(lambda: client.get(base + query + quote(value)))
        run()


# -- the emulator's WeChat API -----------------------------------------------------------------------

EMULATOR_CALLS = ["/cgi-bin/stable_token", "/cgi-bin/message/custom/send", "/cgi-bin/message/template/send",
                  "/cgi-bin/menu/create", "/cgi-bin/qrcode/create", "/card/create", "/card/update",
                  "/card/membercard/activateuserform/set", "/card/membercard/userinfo/get",
                  "/card/membercard/activate", "/card/membercard/updateuser", "/card/code/get",
                  "/card/qrcode/create", "/wxa/business/getuserphonenumber"]


@pytest.mark.parametrize("path", EMULATOR_CALLS)
def test_emulator_api_bodies(app, emulator, path):
    """The emulator answers a malformed body as WeChat does (an errcode), never with a 5xx."""
    client = app.test_client()
    token = client.get("/_emulator/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": emulator.appid, "secret": emulator.secret}).get_json()
    access_token = token.get("access_token", "")
    with Harness(app, f"emulator:{path}") as harness:
        @given(body=json_values.map(dumps) | deep_json.map(str.encode) | st.binary(max_size=128))
        def run(body: bytes) -> None:
            harness.check(lambda: client.post("/_emulator" + path, query_string={"access_token": access_token},
                                              data=body, headers={"Content-Type": "application/json"}))
        run()


CUSTOM_SEND_BODIES = {
    "msgmenu": {"touser": "o", "msgtype": "msgmenu", "msgmenu": {
        "head_content": "h", "list": [{"id": "101", "content": "满意"}], "tail_content": "t"}},
    "image": {"touser": "o", "msgtype": "image", "image": {"media_id": "m"}},
}


@pytest.mark.parametrize("kind", sorted(CUSTOM_SEND_BODIES))
def test_emulator_custom_send_media_and_msgmenu_bodies(app, emulator, kind):
    """A customer-service image or msgmenu with any one field wrong gets an errcode, never a 5xx."""
    client = app.test_client()
    access_token = client.get("/_emulator/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": emulator.appid,
        "secret": emulator.secret}).get_json().get("access_token", "")
    with Harness(app, f"emulator:custom/send:{kind}") as harness:
        @given(body=mutations(CUSTOM_SEND_BODIES[kind]))
        def run(body: dict) -> None:
            harness.check(lambda: client.post("/_emulator/cgi-bin/message/custom/send",
                                              query_string={"access_token": access_token}, data=dumps(body),
                                              headers={"Content-Type": "application/json"}))
        run()


@pytest.mark.parametrize("kind", ["image", "voice", "video", "thumb", "file", ""])
def test_emulator_media_upload_bodies(app, emulator, kind):
    """media/upload given any bytes, as a `media` part or as the whole body, answers an errcode or
    a media_id, never a 5xx."""
    client = app.test_client()
    access_token = client.get("/_emulator/cgi-bin/token", query_string={
        "grant_type": "client_credential", "appid": emulator.appid,
        "secret": emulator.secret}).get_json().get("access_token", "")
    with Harness(app, f"emulator:media/upload:{kind}") as harness:
        @given(data=st.binary(max_size=256), as_part=st.booleans(), name=st.binary(max_size=24),
               content_type=st.sampled_from([b"image/png", b"audio/amr", b"", b"\xff\xfe"]))
        def run(data: bytes, as_part: bool, name: bytes, content_type: bytes) -> None:
            if as_part:  # a `media` part built by hand, so the file name may be any bytes at all
                data = (b'--x\r\nContent-Disposition: form-data; name="media"; filename="' + name + b'"\r\n'
                        + b"Content-Type: " + content_type + b"\r\n\r\n" + data + b"\r\n--x--\r\n")

            def call():
                return client.post("/_emulator/cgi-bin/media/upload", query_string={
                    "access_token": access_token, "type": kind}, data=data,
                    headers={"Content-Type": "multipart/form-data; boundary=x"})
            harness.check(call)
        run()


# -- the emulator's WeChat Pay API -------------------------------------------------------------------

PAY_CALLS = {"/v3/pay/transactions/native": {"appid": "wx", "mchid": "m", "description": "d", "out_trade_no": "N1",
                                             "notify_url": "https://x/pay/notify", "amount": {"total": 100}},
             "/v3/pay/transactions/jsapi": {"appid": "wx", "mchid": "m", "description": "d", "out_trade_no": "N2",
                                            "notify_url": "https://x/pay/notify", "amount": {"total": 100},
                                            "payer": {"openid": "o"}},
             "/v3/pay/transactions/codepay": {"appid": "wx", "mchid": "m", "description": "d", "out_trade_no": "N3",
                                              "amount": {"total": 100}, "payer": {"auth_code": "134567890123456789"},
                                              "scene_info": {"store_info": {"out_id": "s"}}},
             "/v3/pay/transactions/out-trade-no/N1/close": {"mchid": "m"},
             "/v3/pay/transactions/out-trade-no/N3/reverse": {"mchid": "m", "appid": "wx"},
             "/v3/refund/domestic/refunds": {"out_trade_no": "N1", "out_refund_no": "R1",
                                             "amount": {"refund": 10, "total": 100, "currency": "CNY"}}}


@pytest.mark.parametrize("path", list(PAY_CALLS))
def test_emulator_pay_api_bodies(app, path):
    """Signed by the demo merchant, so what the emulated WeChat Pay judges is the body: a 4xx with
    WeChat Pay's error code, never a 5xx."""
    from payments.config import current_payment_config

    client = app.test_client()
    with app.app_context():
        signer = current_payment_config().signer
    # The real merchant and app, so that a body of the right shape goes all the way in.
    base = json.loads(json.dumps(PAY_CALLS[path]).replace('"m"', f'"{signer.mchid}"')
                      .replace('"wx"', f'"{app.extensions["wx"].settings.WECHAT_APPID}"'))
    url = "/_emulator/pay" + path
    with Harness(app, f"emulator-pay:{path}") as harness:
        @given(body=mutations(base).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=128))
        def run(body: bytes) -> None:
            headers = {"Authorization": signer.authorization("POST", url, body), "Content-Type": "application/json",
                       "Accept": "application/json"}
            harness.check(lambda: client.post(url, data=body, headers=headers))
        run()


# -- the OA pages' JSON call -------------------------------------------------------------------------

def test_h5_order_bodies(app):
    """POST /h5/pay/orders from a shopper signed in by web authorization, with the page's CSRF token."""
    from wx_service.edges import h5

    client = app.test_client()
    with client.session_transaction() as session:
        session[h5.OPENID_KEY] = "oH5Fuzz" + secrets.token_hex(8)
        session[h5.CSRF_KEY] = "fuzz-csrf-token"
    base = {"amount_fen": 100, "description": "咖啡", "counter": "1F-fuzz", "source": "qr:fuzz"}
    with Harness(app, "h5:/h5/pay/orders") as harness:
        @given(body=mutations(base).map(dumps) | json_values.map(dumps) | deep_json.map(str.encode)
               | st.binary(max_size=128))
        def run(body: bytes) -> None:
            harness.check(lambda: client.post("/h5/pay/orders", data=body, headers={
                "Content-Type": "application/json", "X-CSRF-Token": "fuzz-csrf-token"}))
        run()


@pytest.mark.parametrize("path,body", [
    ("/console/api/desk/conversations/{id}/note", {"body": "a\x00b"}),
    ("/console/api/desk/faq", {"question": "q\x00", "pattern": "停车", "answer": "B2"}),
    ("/console/api/desk/canned", {"shortcut": "/x\x00", "body": "hi"}),
])
def test_a_nul_in_desk_text_is_refused_by_name_on_every_database(app, desk_console, path, body):
    """Found by the desk's fuzzing on Postgres: text cannot hold NUL, and it must be a 400 that
    names the field, not a 500 after the request was accepted (SQLite would have stored it)."""
    client, csrf, conversation_id = desk_console
    with Harness(app, "desk:nul") as harness:
        status = harness.check(lambda: client.post(path.format(id=conversation_id), data=dumps(body),
                                                   headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}))
    assert status == 400
    searched = client.get("/console/api/desk/search?q=" + quote("停车\x00"))
    assert searched.status_code == 400 and "NUL" in searched.get_json()["error"]
