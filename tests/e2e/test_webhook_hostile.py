"""Hostile bodies at the webhook, over real HTTP: each is refused with a 4xx (never a 5xx, never a
reply), nothing is stored, and the service keeps answering genuine pushes afterwards.

Every request carries a valid `signature` for its query (and in safe mode a valid `msg_signature`
for its Encrypt), so what is refused is the body itself, not a bad signature.
"""
from __future__ import annotations

import socket
import time
from urllib.parse import urlencode, urlparse

import pytest
import requests

from members.models import Follower
from tests.e2e.test_webhook import TIMEOUT, count, new_openid, post, push, reply_for, rows, text_fields
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.models import InboundPush
from wx_service.ground.protocol.signature import sign

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&lol9;</Content><MsgId>{msg_id}</MsgId></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&xxe;</Content><MsgId>{msg_id}</MsgId></xml>"""

XXE_PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>hi</Content><MsgId>{msg_id}</MsgId></xml>"""

PLAIN_DOCTYPE = """<?xml version="1.0"?>
<!DOCTYPE xml>
<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>hi</Content><MsgId>{msg_id}</MsgId></xml>"""

DUPLICATED_CONTENT = """<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content>
<Content><![CDATA[人工]]></Content><MsgId>{msg_id}</MsgId></xml>"""

DUPLICATED_SENDER = """<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<FromUserName><![CDATA[oSomeoneElse]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_x]]></EventKey></xml>"""

MISSING_MSGTYPE = """<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><Content><![CDATA[你好]]></Content><MsgId>{msg_id}</MsgId></xml>"""

MISSING_SENDER = """<xml><ToUserName><![CDATA[{to}]]></ToUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"""

BAD_CREATE_TIME = """<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>yesterday</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"""

TRUNCATED = """<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好"""

WRONG_ROOT = """<message><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>hi</Content><MsgId>{msg_id}</MsgId></message>"""

DEEP = "<xml>" + "<a>" * 50 + "x" + "</a>" * 50 + "</xml>"

JSON_BODY = '{{"ToUserName": "{to}", "FromUserName": "{openid}", "CreateTime": {now}, "MsgType": "text"}}'

HOSTILE = {
    "billion laughs": BILLION_LAUGHS,
    "external entity file:///etc/passwd": XXE,
    "external parameter entity": XXE_PARAMETER,
    "doctype": PLAIN_DOCTYPE,
    "duplicated Content": DUPLICATED_CONTENT,
    "duplicated FromUserName": DUPLICATED_SENDER,
    "missing MsgType": MISSING_MSGTYPE,
    "missing FromUserName": MISSING_SENDER,
    "CreateTime not a number": BAD_CREATE_TIME,
    "truncated": TRUNCATED,
    "wrong root": WRONG_ROOT,
    "nested too deep": DEEP,
    "JSON": JSON_BODY,
    "empty": "",
    "not XML at all": "hello, world",
}


@pytest.fixture
def settings_(wx):
    return wx.settings


def _render(template: str, emulator) -> str:
    return template.format(to=emulator.original_id, openid=new_openid(), now=int(time.time()),
                           msg_id=emulator.next_msg_id())


def _signed_query(emulator, nonce: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()))
    nonce = nonce or str(time.monotonic_ns())
    return {"signature": sign(emulator.token, ts, nonce), "timestamp": ts, "nonce": nonce}


def _assert_refused(response: requests.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert not response.content.lstrip().startswith(b"<") and response.content != b"success"  # no reply
    assert b"root:" not in response.content  # nothing of /etc/passwd comes back


def _assert_nothing_stored(wx) -> None:
    assert count(wx, InboundPush) == 0
    assert count(wx, Follower) == 0


def _still_serving(base_url, emulator, settings) -> None:
    openid = new_openid()
    _, _, r = push(base_url, emulator, text_fields(emulator, openid, "你好"), "safe")
    assert reply_for(settings, r, "safe", openid)["Content"] == settings.HELP_TEXT


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_plaintext_body_is_refused(base_url, emulator, wx, case):
    body = _render(HOSTILE[case], emulator).encode("utf-8")
    r = post(base_url, _signed_query(emulator), body)
    _assert_refused(r)
    _assert_nothing_stored(wx)


# A compatible-mode body is the message plus <Encrypt>; bodies without an <xml> root have no place
# for it and are covered in plaintext above.
NOT_AN_ENVELOPE = ("empty", "not XML at all", "JSON", "truncated", "wrong root")
ENCRYPTED_CASES = [("safe", case) for case in HOSTILE] + [
    ("compatible", case) for case in HOSTILE if case not in NOT_AN_ENVELOPE]


@pytest.mark.parametrize("mode,case", ENCRYPTED_CASES)
def test_hostile_xml_inside_a_genuine_encrypt_is_refused(base_url, emulator, wx, mode, case):
    """Signed and encrypted with the account's own key: the decrypted XML gets the same scrutiny."""
    inner = _render(HOSTILE[case], emulator)
    query, body = sign_and_wrap(emulator, inner, mode)
    if mode == "compatible":
        # sign_and_wrap puts Encrypt before </xml>; the clear copy is the hostile XML as well.
        assert b"<Encrypt>" in body
    r = post(base_url, query, body)
    _assert_refused(r)
    _assert_nothing_stored(wx)


def test_two_encrypt_elements_are_refused(base_url, emulator, wx):
    real_q, real_body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), "你好")), "safe")
    other_q, other_body = sign_and_wrap(emulator, build_push_xml(text_fields(emulator, new_openid(), "人工")), "safe",
                                        timestamp=real_q["timestamp"], nonce=real_q["nonce"])
    extra = other_body.split(b"<Encrypt>")[1].split(b"</Encrypt>")[0]
    body = real_body.replace(b"</xml>", b"<Encrypt>" + extra + b"</Encrypt>\n</xml>")
    _assert_refused(post(base_url, real_q, body))
    _assert_nothing_stored(wx)


@pytest.mark.parametrize("encoding", ["gbk", "utf-16", "utf-16-le", "latin-1"])
def test_non_utf8_body_is_refused(base_url, emulator, wx, settings_, encoding):
    content_ = "你好" if encoding in ("gbk", "utf-16", "utf-16-le") else "café"
    xml = build_push_xml(text_fields(emulator, new_openid(), content_))
    declared = "utf-16" if encoding.startswith("utf-16") else encoding
    body = f'<?xml version="1.0" encoding="{declared}"?>\n{xml}'.encode(encoding)
    r = post(base_url, _signed_query(emulator), body)
    _assert_refused(r)
    _assert_nothing_stored(wx)
    _still_serving(base_url, emulator, settings_)


def test_body_over_the_limit_is_413(base_url, emulator, wx, settings_):
    openid = new_openid()
    xml = build_push_xml(text_fields(emulator, openid, "长" * (settings_.WEBHOOK_MAX_BODY // 3 + 10)))
    r = post(base_url, _signed_query(emulator), xml.encode("utf-8"))
    assert r.status_code == 413
    _assert_nothing_stored(wx)


def _raw_post(base_url: str, query: dict[str, str], headers: dict[str, str], chunks) -> bytes:
    """Send the request line and headers, then as much of the body as `chunks` yields (the server
    may close the connection early), then read whatever response comes back."""
    url = urlparse(base_url)
    head = f"POST /wechat?{urlencode(query)} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: text/xml\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT) as conn:
        conn.sendall(head.encode())
        try:
            for chunk in chunks:
                conn.sendall(chunk)
        except OSError:
            pass  # refused before we finished sending: that is the point
        received = b""
        while b"\r\n\r\n" not in received:
            data = conn.recv(65536)  # times out (failing the test) if the server waits for the rest
            if not data:
                break
            received += data
    return received


def test_ten_megabyte_body_is_refused_without_reading_it(base_url, emulator, wx, settings_):
    """Content-Length says 10 MB; only 128 KB is ever sent. The 413 must come anyway: a server
    that tried to read the whole body would wait until the client gave up."""
    declared = 10 * 1024 * 1024
    head = _raw_post(base_url, _signed_query(emulator), {"Content-Length": str(declared)},
                     [b"<xml>" + b"A" * (64 * 1024), b"A" * (64 * 1024)])
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    _assert_nothing_stored(wx)
    _still_serving(base_url, emulator, settings_)


def test_endless_chunked_body_is_refused_without_reading_it(base_url, emulator, wx, settings_):
    """No Content-Length at all: the body is chunked and never ends. The server reads past its limit
    and no further."""
    chunk = b"A" * 32 * 1024
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    head = _raw_post(base_url, _signed_query(emulator), {"Transfer-Encoding": "chunked"},
                     [b"6\r\n<xml>\r\n"] + [framed] * 4)  # 128 KB, then silence (no final 0-chunk)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    _assert_nothing_stored(wx)


def test_ten_megabyte_body_sent_in_full_gets_413(base_url, emulator, wx):
    try:
        r = post(base_url, _signed_query(emulator), b"<xml>" + b"A" * (10 * 1024 * 1024) + b"</xml>")
    except requests.ConnectionError:
        pass  # the server answered and closed before the client finished sending
    else:
        assert r.status_code == 413
    _assert_nothing_stored(wx)


def test_hostile_pushes_do_not_disturb_genuine_ones(base_url, emulator, wx, settings_):
    for template in (BILLION_LAUGHS, XXE, DUPLICATED_CONTENT, TRUNCATED):
        _assert_refused(post(base_url, _signed_query(emulator), _render(template, emulator).encode()))
    _still_serving(base_url, emulator, settings_)
    assert count(wx, InboundPush) == 1


def test_doctype_text_inside_a_message_is_just_text(base_url, emulator, wx, settings_):
    """A shopper may type markup; inside CDATA it is content, not a DTD, and gets an ordinary reply."""
    openid = new_openid()
    words = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]> &e;'
    _, _, r = push(base_url, emulator, text_fields(emulator, openid, words), "safe")
    assert reply_for(settings_, r, "safe", openid)["Content"] == settings_.HELP_TEXT
    [record] = rows(wx, InboundPush)
    assert record.content == words
