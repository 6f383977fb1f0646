"""Hostile and edge-case input for the protocol code: XML parsing (reference §11.1), decryption of
tampered buffers (§2.3, §2.6), push building and dedup keys (§3.3, §3.6) and passive replies (§3.5).

Samples marked "copied from the reference" are verbatim from reference/wechat-protocol.md.
"""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wx_service.ground.protocol.crypto import MessageCrypto, pack, pkcs7_pad
from wx_service.ground.protocol.errors import (
    DecodeBase64Error,
    DecryptError,
    IllegalBuffer,
    InvalidAppId,
    MalformedXml,
    ProtocolError,
)
from wx_service.ground.protocol.messages import build_push, dedup_key_for
from wx_service.ground.protocol.replies import (
    Article,
    Reply,
    ReplyTooLarge,
    cdata_safe,
    image,
    news,
    parse_reply,
    text,
    transfer_to_customer_service,
)
from wx_service.ground.protocol.xml import MAX_DEPTH, parse_xml

# --- samples copied from the reference --------------------------------------------------------
# §3.2 official text message
TEXT_MESSAGE_SAMPLE = """\
<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[this is a test]]></Content>
  <MsgId>1234567890123456</MsgId>
</xml>
"""
# §3.4 official user_get_card sample, whitespace as published
USER_GET_CARD_SAMPLE = """\
<xml>
  <ToUserName> <![CDATA[gh_fc0a06a20993]]> </ToUserName>
  <FromUserName> <![CDATA[oZI8Fj040-be6rlDohc6gkoPOQTQ]]> </FromUserName>
  <CreateTime>1472551036</CreateTime>
  <MsgType> <![CDATA[event]]> </MsgType>
  <Event> <![CDATA[user_get_card]]> </Event>
  <CardId> <![CDATA[pZI8Fjwsy5fVPRBeD78J4RmqVvBc]]> </CardId>
  <IsGiveByFriend>0</IsGiveByFriend>
  <UserCardCode> <![CDATA[226009850808]]> </UserCardCode>
  <FriendUserName> <![CDATA[]]> </FriendUserName>
  <OuterId>0</OuterId>
  <OldUserCardCode> <![CDATA[]]> </OldUserCardCode>
  <OuterStr> <![CDATA[12b]]> </OuterStr>
  <IsRestoreMemberCard>0</IsRestoreMemberCard>
  <IsRecommendByFriend>0</IsRecommendByFriend>
</xml>
"""
# §3.5 transfer_customer_service (WxJava WxMpXmlOutTransferKefuMessageTest)
TRANSFER_KF_SAMPLE = """\
<xml>
  <ToUserName><![CDATA[touser]]></ToUserName>
  <FromUserName><![CDATA[fromuser]]></FromUserName>
  <CreateTime>1399197672</CreateTime>
  <MsgType><![CDATA[transfer_customer_service]]></MsgType>
  <TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo>
</xml>
"""

# V-ENC-1 account (§2.7): token spamtest, the OA sample key, appid wx2c2769f8efd9abc2.
OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_APPID = "wx2c2769f8efd9abc2"
V_ENC_1_ENCRYPT = (
    'hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6'
    'F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T33'
    '2jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCg'
    'avjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6Oewp'
    'usjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE='
)


def _crypto() -> MessageCrypto:
    return MessageCrypto("spamtest", OA_KEY, OA_APPID)


def _aes_encrypt_raw(plain: bytes) -> str:
    """AES-256-CBC of an arbitrary (already block-aligned) buffer, done without our crypto module,
    so tampered layouts can be fed to `decrypt`."""
    key = base64.b64decode(OA_KEY + "=")
    assert len(plain) % 16 == 0
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


# =============================================================================================
# XML (§11.1)
# =============================================================================================

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>gh_1</ToUserName><Content>&lol9;</Content></xml>"""

XXE_FILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xml [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content>&xxe;</Content></xml>"""


def test_billion_laughs_is_refused():
    with pytest.raises(MalformedXml):
        parse_xml(BILLION_LAUGHS)


def test_external_entity_file_is_refused():
    with pytest.raises(MalformedXml):
        parse_xml(XXE_FILE)


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE xml><xml><A>1</A></xml>",
        b'<!DOCTYPE xml SYSTEM "http://attacker.test/x.dtd"><xml><A>1</A></xml>',
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml><A>1</A></xml>',
        b'<?xml version="1.0"?>\n<!DOCTYPE xml PUBLIC "-//x//y" "http://attacker.test/y.dtd"><xml><A>1</A></xml>',
        # A comment mentioning "<xml" before the DTD must not let it through.
        b'<!-- <xml --><!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
        b"<!-- <xml --><!DOCTYPE xml><xml><A>1</A></xml>",
    ],
    ids=["bare", "external-dtd", "parameter-entity", "public-dtd", "after-comment", "after-comment-no-entity"],
)
def test_any_doctype_is_refused(body):
    with pytest.raises(MalformedXml):
        parse_xml(body)


def test_undeclared_entity_is_refused():
    with pytest.raises(MalformedXml):
        parse_xml(b"<xml><A>&xxe;</A></xml>")


def test_doctype_text_inside_a_message_is_only_text():
    """A shopper may type "<!DOCTYPE" in a chat; inside CDATA it is content, not markup."""
    fields = parse_xml(
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName>"
        b"<Content><![CDATA[<!DOCTYPE html><!ENTITY x SYSTEM 'file:///etc/passwd'>]]></Content></xml>")
    assert fields["Content"] == "<!DOCTYPE html><!ENTITY x SYSTEM 'file:///etc/passwd'>"


def test_character_references_are_plain_text():
    assert parse_xml(b"<xml><A>&lt;b&gt;&amp;&#20013;</A></xml>") == {"A": "<b>&\u4e2d"}


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><MsgType>text</MsgType><MsgType>event</MsgType></xml>",
        # compatible mode: a second Encrypt must not be able to shadow the first
        b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt><ToUserName>gh_1</ToUserName><Encrypt><![CDATA[BBBB]]></Encrypt></xml>",
        b"<xml><ScanCodeInfo><ScanType>qrcode</ScanType><ScanType>barcode</ScanType></ScanCodeInfo></xml>",
        b"<xml><FromUserName>a</FromUserName><ToUserName>b</ToUserName><FromUserName>c</FromUserName></xml>",
    ],
    ids=["msgtype", "encrypt", "nested", "non-adjacent"],
)
def test_duplicated_elements_are_refused(body):
    with pytest.raises(MalformedXml, match="twice"):
        parse_xml(body)


def test_item_and_list_may_repeat():
    fields = parse_xml(
        b"<xml><SendPicsInfo><Count>2</Count><PicList>"
        b"<item><PicMd5Sum><![CDATA[a1]]></PicMd5Sum></item>"
        b"<item><PicMd5Sum><![CDATA[b2]]></PicMd5Sum></item>"
        b"</PicList></SendPicsInfo>"
        b"<SubscribeMsgPopupEvent><List><TemplateId>t1</TemplateId></List><List><TemplateId>t2</TemplateId></List>"
        b"</SubscribeMsgPopupEvent></xml>")
    assert fields["SendPicsInfo"]["PicList"]["item"] == [{"PicMd5Sum": "a1"}, {"PicMd5Sum": "b2"}]
    assert fields["SubscribeMsgPopupEvent"]["List"] == [{"TemplateId": "t1"}, {"TemplateId": "t2"}]


@pytest.mark.parametrize(
    "body",
    [
        "<xml><Content>中文</Content></xml>".encode("gbk"),
        "<xml><Content>café</Content></xml>".encode("latin-1"),
        "<xml><Content>x</Content></xml>".encode("utf-16"),  # with a BOM
        "<xml><Content>x</Content></xml>".encode("utf-16-le"),  # no BOM: expat would guess UTF-16
        '<?xml version="1.0" encoding="GBK"?><xml><Content>x</Content></xml>'.encode("ascii"),
        # UTF-8 bytes declared as Latin-1 would otherwise come out as mojibake
        '<?xml version="1.0" encoding="ISO-8859-1"?><xml><Content>中文</Content></xml>'.encode("utf-8"),
        b"<xml><Content>a\x00b</Content></xml>",
    ],
    ids=["gbk", "latin-1", "utf-16-bom", "utf-16le-no-bom", "declared-gbk", "declared-latin-1", "nul"],
)
def test_non_utf8_is_refused(body):
    with pytest.raises(MalformedXml):
        parse_xml(body)


@pytest.mark.parametrize(
    "body",
    [
        "<xml><Content>中文</Content></xml>".encode("utf-8"),
        '<?xml version="1.0" encoding="UTF-8"?><xml><Content>中文</Content></xml>'.encode("utf-8"),
        b"\xef\xbb\xbf" + '<?xml version="1.0" encoding="utf-8"?><xml><Content>中文</Content></xml>'.encode("utf-8"),
    ],
    ids=["plain", "declared", "bom"],
)
def test_utf8_is_accepted(body):
    assert parse_xml(body) == {"Content": "中文"}


def _nested(depth: int) -> bytes:
    """<xml> plus depth-1 nested elements below it (so the innermost element is at `depth`)."""
    inner = depth - 1
    return b"<xml>" + b"<a>" * inner + b"x" + b"</a>" * inner + b"</xml>"


def test_depth_limit():
    value = parse_xml(_nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 2):
        value = value["a"]
    assert value == {"a": "x"}
    with pytest.raises(MalformedXml, match="deeply"):
        parse_xml(_nested(MAX_DEPTH + 1))


def test_very_deep_nesting_is_refused_cleanly():
    with pytest.raises(MalformedXml):
        parse_xml(_nested(5000))


def test_deepest_real_push_fits_the_limit():
    """pic_* events are the deepest WeChat sends: xml/SendPicsInfo/PicList/item/PicMd5Sum."""
    fields = parse_xml(
        b"<xml><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[m]]></PicMd5Sum></item>"
        b"</PicList></SendPicsInfo></xml>")
    assert fields["SendPicsInfo"]["PicList"]["item"]["PicMd5Sum"] == "m"


@pytest.mark.parametrize(
    "body",
    [
        b"<root><ToUserName>gh_1</ToUserName></root>",
        b'<x:xml xmlns:x="urn:x"><ToUserName>gh_1</ToUserName></x:xml>',
        b'<xml xmlns="urn:x"><ToUserName>gh_1</ToUserName></xml>',
        b"<XML><ToUserName>gh_1</ToUserName></XML>",
    ],
    ids=["root", "prefixed", "default-namespace", "upper-case"],
)
def test_root_must_be_xml(body):
    with pytest.raises(MalformedXml, match="root"):
        parse_xml(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml", b"<xml><A>1</A>", b"<xml><A>1</A></xml><xml/>", b"<xml></xml>", b"<xml>text</xml>",
     b"<xml><A>text<B>1</B></A></xml>", b"<xml><A><B>1</B>tail</A></xml>"],
    ids=["empty", "text", "unclosed", "two-roots", "no-fields", "text-root", "mixed", "mixed-tail"],
)
def test_malformed_documents_are_refused(body):
    with pytest.raises(MalformedXml):
        parse_xml(body)


def test_parse_xml_takes_bytes_only():
    with pytest.raises(TypeError):
        parse_xml("<xml><A>1</A></xml>")  # type: ignore[arg-type]


def test_whitespace_around_cdata_user_get_card_sample():
    """§3.4 official user_get_card sample, whitespace as published: values come out clean."""
    fields = parse_xml(USER_GET_CARD_SAMPLE.encode("utf-8"))
    assert fields == {
        "ToUserName": "gh_fc0a06a20993",
        "FromUserName": "oZI8Fj040-be6rlDohc6gkoPOQTQ",
        "CreateTime": "1472551036",
        "MsgType": "event",
        "Event": "user_get_card",
        "CardId": "pZI8Fjwsy5fVPRBeD78J4RmqVvBc",
        "IsGiveByFriend": "0",
        "UserCardCode": "226009850808",
        "FriendUserName": "",
        "OuterId": "0",
        "OldUserCardCode": "",
        "OuterStr": "12b",
        "IsRestoreMemberCard": "0",
        "IsRecommendByFriend": "0",
    }
    push = build_push(fields)
    assert push.event == "user_get_card"
    assert push.message.card_id == "pZI8Fjwsy5fVPRBeD78J4RmqVvBc"
    assert push.openid == "oZI8Fj040-be6rlDohc6gkoPOQTQ"


def test_official_text_message_sample():
    """§3.2 official text message: CDATA strings and bare numbers both parse."""
    push = build_push(parse_xml(TEXT_MESSAGE_SAMPLE.encode("utf-8")))
    assert push.msg_type == "text"
    assert push.message.content == "this is a test"
    assert push.message.id == 1234567890123456
    assert push.dedup_key == "msg:1234567890123456"
    assert push.is_user_message


# =============================================================================================
# Decryption of tampered buffers (§2.3; codes from §2.6)
# =============================================================================================

def test_well_formed_handmade_buffer_decrypts():
    """Control case for the tampering tests below: the same helper with a correct layout works."""
    full_str = pack(b"0123456789abcdef", b"<xml/>", OA_APPID.encode())
    assert _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(full_str))) == b"<xml/>"


def test_full_block_of_padding_when_aligned():
    """k = 32: an aligned FullStr gets 32 bytes of 0x20 (a 16-byte PKCS#7 would add 16 of 0x10)."""
    message = b"x" * (64 - 16 - 4 - len(OA_APPID))
    full_str = pack(b"0123456789abcdef", message, OA_APPID.encode())
    assert len(full_str) == 64
    padded = pkcs7_pad(full_str)
    assert padded == full_str + b"\x20" * 32
    assert _crypto().decrypt(_aes_encrypt_raw(padded)) == message
    # and a pad count between 17 and 32 is legal on the way in
    short = pack(b"0123456789abcdef", b"ab", OA_APPID.encode())
    assert 16 < 32 - len(short) % 32 <= 32
    assert _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(short))) == b"ab"


def _with_padding(full_str: bytes, tail: bytes) -> bytes:
    """full_str followed by filler so that the buffer ends with `tail` and is block aligned."""
    filler = (-(len(full_str) + len(tail))) % 32
    return full_str + b"\x01" * filler + tail


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("n=0", b"\x00"),
        ("n=33", b"\x21" * 33),  # consistent bytes, but beyond the 32-byte block
        ("n=255", b"\xff"),
        ("inconsistent", b"\x05\x05\x07\x05\x04"),  # last byte 4, the three before it are not 4
    ],
)
def test_bad_padding_is_refused(name, tail):
    full_str = pack(b"0123456789abcdef", b"<xml/>", OA_APPID.encode())
    with pytest.raises(IllegalBuffer) as info:
        _crypto().decrypt(_aes_encrypt_raw(_with_padding(full_str, tail)))
    assert info.value.code == -40008


def test_pad_count_larger_than_the_buffer_is_refused():
    with pytest.raises(IllegalBuffer):
        _crypto().decrypt(_aes_encrypt_raw(b"\x20" * 16))


def test_buffer_too_short_for_random_and_length_is_refused():
    """Truncated FullStr: 16 random bytes and only 2 of the 4 length bytes."""
    with pytest.raises(IllegalBuffer):
        _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(b"0123456789abcdef\x00\x00")))


def test_length_larger_than_buffer_is_refused():
    full_str = b"0123456789abcdef" + (1000).to_bytes(4, "big") + b"<xml/>" + OA_APPID.encode()
    with pytest.raises(IllegalBuffer, match="length"):
        _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(full_str)))


def test_length_of_2_to_the_32_minus_1_is_refused():
    full_str = b"0123456789abcdef" + b"\xff\xff\xff\xff" + b"<xml/>" + OA_APPID.encode()
    with pytest.raises(IllegalBuffer):
        _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(full_str)))


def test_length_swallowing_the_appid_is_refused():
    """A length that covers msg and receiveid leaves an empty receiveid: not our app id."""
    message = b"<xml/>"
    full_str = b"0123456789abcdef" + (len(message) + len(OA_APPID)).to_bytes(4, "big") + message + OA_APPID.encode()
    with pytest.raises(InvalidAppId):
        _crypto().decrypt(_aes_encrypt_raw(pkcs7_pad(full_str)))


def test_truncated_ciphertext_is_refused():
    raw = base64.b64decode(V_ENC_1_ENCRYPT)
    assert _crypto().decrypt(V_ENC_1_ENCRYPT)  # the untouched vector decrypts
    with pytest.raises(DecryptError):  # not a whole number of AES blocks
        _crypto().decrypt(base64.b64encode(raw[:-5]).decode())
    with pytest.raises(ProtocolError):  # a whole block short: padding or layout no longer holds
        _crypto().decrypt(base64.b64encode(raw[:-16]).decode())
    with pytest.raises(ProtocolError):
        _crypto().decrypt(base64.b64encode(raw[:16]).decode())


def test_wrong_appid_is_refused_with_40005():
    with pytest.raises(InvalidAppId) as info:
        MessageCrypto("spamtest", OA_KEY, "wx0000000000000000").decrypt(V_ENC_1_ENCRYPT)
    assert info.value.code == -40005
    with pytest.raises(InvalidAppId):  # a prefix of the real one is not enough
        MessageCrypto("spamtest", OA_KEY, OA_APPID[:-1]).decrypt(V_ENC_1_ENCRYPT)
    with pytest.raises(InvalidAppId):  # nor is the expected id given per call
        _crypto().decrypt(V_ENC_1_ENCRYPT, expected_appid="wx5823bf96d3bd56c7")


@pytest.mark.parametrize(
    "encrypt",
    ["not base64!!", "hyzAe4Oz mOMbd6Tv", "hyzAe4OzmOMbd6T", "中文中文", V_ENC_1_ENCRYPT[:-1]],
    ids=["punctuation", "space", "bad-length", "non-ascii", "missing-padding"],
)
def test_non_base64_is_refused(encrypt):
    with pytest.raises(DecodeBase64Error) as info:
        _crypto().decrypt(encrypt)
    assert info.value.code == -40010
    assert isinstance(info.value, DecryptError)  # callers catching DecryptError still catch it


def test_empty_encrypt_is_refused():
    with pytest.raises(DecryptError):
        _crypto().decrypt("")


def test_wrong_key_does_not_yield_a_message():
    """The right appid configured but another EncodingAESKey: garbage must not pass as a message."""
    with pytest.raises(ProtocolError):
        MessageCrypto("spamtest", "A" * 43, OA_APPID).decrypt(V_ENC_1_ENCRYPT)


@pytest.mark.parametrize("key", ["A" * 42, "A" * 44, "!" * 43, "abcdefghijklmnopqrstuvwxyz0123456789ABCDE=G"])
def test_invalid_encoding_aes_key_is_refused(key):
    with pytest.raises(ProtocolError) as info:
        MessageCrypto("t", key, OA_APPID)
    assert info.value.code == -40004


def test_random_prefix_must_be_16_bytes():
    with pytest.raises(ValueError):
        _crypto().encrypt("<xml/>", random_prefix="short")
    with pytest.raises(ValueError):
        _crypto().encrypt("<xml/>", random_prefix="中文中文中文")  # 6 characters, 18 bytes


# =============================================================================================
# build_push and dedup keys (§3.1, §3.3, §3.6)
# =============================================================================================

HEADER = {"ToUserName": "gh_10f6c3c3ac5a", "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
          "CreateTime": "1409735668"}


def _event(**extra: str) -> dict:
    return {**HEADER, "MsgType": "event", **extra}


@pytest.mark.parametrize("missing", ["ToUserName", "FromUserName", "CreateTime", "MsgType"])
def test_build_push_requires_header_fields(missing):
    fields = {**HEADER, "MsgType": "text", "Content": "hi", "MsgId": "1"}
    build_push(fields)  # complete: accepted
    del fields[missing]
    with pytest.raises(MalformedXml, match=missing):
        build_push(fields)


@pytest.mark.parametrize("field", ["ToUserName", "FromUserName", "CreateTime", "MsgType"])
def test_build_push_refuses_empty_or_nested_header_fields(field):
    with pytest.raises(MalformedXml):
        build_push({**HEADER, "MsgType": "text", field: ""})
    with pytest.raises(MalformedXml):
        build_push({**HEADER, "MsgType": "text", field: {"x": "1"}})


@pytest.mark.parametrize("create_time", ["-1", "1.5", "abc", " 12", "\uff11\uff12", "\u00b2", "1" * 40])
def test_build_push_requires_integer_create_time(create_time):
    """ASCII digits only: int() must accept whatever passes (full-width digits or "²" would not
    give the same number or any number)."""
    with pytest.raises(MalformedXml, match="CreateTime"):
        build_push({**HEADER, "CreateTime": create_time, "MsgType": "text", "MsgId": "1"})


def test_subscribe_with_qrscene_becomes_subscribe_scan():
    push = build_push(_event(Event="subscribe", EventKey="qrscene_123123", Ticket="TICKET"))
    assert push.event == "subscribe_scan"
    assert push.message.scene_id == "123123"
    assert push.message.ticket == "TICKET"
    assert not push.is_user_message
    # the stored fields stay as received (the dedup key and the audit row see the raw push)
    assert push.fields["EventKey"] == "qrscene_123123"


def test_plain_subscribe_and_scan_keep_their_names():
    assert build_push(_event(Event="subscribe")).event == "subscribe"
    assert build_push(_event(Event="subscribe", EventKey="")).event == "subscribe"
    scan = build_push(_event(Event="SCAN", EventKey="123123", Ticket="T"))
    assert scan.event == "scan"
    assert scan.message.scene_id == "123123"  # SCAN carries the raw scene: nothing to strip


def test_dedup_key_for_messages_is_the_msgid():
    fields = {**HEADER, "MsgType": "text", "Content": "hi", "MsgId": "6054768590064713728"}
    assert build_push(fields).dedup_key == "msg:6054768590064713728"
    # a retry is the same push: same key, whatever else happens to differ in our copy
    assert dedup_key_for(dict(fields)) == "msg:6054768590064713728"
    assert dedup_key_for({**fields, "Content": "other"}) == "msg:6054768590064713728"
    assert dedup_key_for({**fields, "MsgId": "6054768590064713729"}) != "msg:6054768590064713728"


def test_dedup_key_for_a_strange_msgid_stays_bounded():
    key = dedup_key_for({**HEADER, "MsgType": "text", "MsgId": "9" * 500})
    assert key.startswith("msg:") and len(key) <= 96  # inbound_pushes.dedup_key is String(96)
    assert key != dedup_key_for({**HEADER, "MsgType": "text", "MsgId": "9" * 499})


def test_dedup_key_for_events_uses_from_createtime_event_eventkey():
    base = _event(Event="CLICK", EventKey="MEMBER_CARD")
    key = dedup_key_for(base)
    assert key.startswith("evt:")
    assert dedup_key_for(dict(base)) == key  # the retry
    assert dedup_key_for({**base, "FromUserName": "another"}) != key
    assert dedup_key_for({**base, "CreateTime": "1409735669"}) != key
    assert dedup_key_for({**base, "Event": "VIEW"}) != key
    assert dedup_key_for({**base, "EventKey": "PARKING"}) != key


def test_two_events_in_the_same_second_with_different_keys_differ():
    click_a = build_push(_event(Event="CLICK", EventKey="MEMBER_CARD"))
    click_b = build_push(_event(Event="CLICK", EventKey="PARKING"))
    assert click_a.dedup_key != click_b.dedup_key
    follow = build_push(_event(Event="subscribe", EventKey="qrscene_1", Ticket="T"))
    location = build_push(_event(Event="LOCATION", Latitude="23.1", Longitude="113.3", Precision="10"))
    assert len({click_a.dedup_key, follow.dedup_key, location.dedup_key}) == 3


def test_events_without_eventkey_are_told_apart_by_what_they_are_about():
    """Two cards claimed in the same second (wx.addCard with several cards), or two template sends
    finishing together, are different events, not a retry of one."""
    card_a = _event(Event="user_get_card", CardId="pCard1", UserCardCode="111")
    card_b = _event(Event="user_get_card", CardId="pCard2", UserCardCode="222")
    assert build_push(card_a).dedup_key != build_push(card_b).dedup_key
    assert build_push(card_a).dedup_key == build_push(dict(card_a)).dedup_key
    sent_a = _event(Event="TEMPLATESENDJOBFINISH", MsgID="200163836", Status="success")
    sent_b = _event(Event="TEMPLATESENDJOBFINISH", MsgID="200163840", Status="success")
    assert build_push(sent_a).dedup_key != build_push(sent_b).dedup_key
    assert build_push(sent_a).dedup_key.startswith("evt:")  # MsgID on an event is not a message id


def test_dedup_key_accepts_integer_fields_as_in_json_pushes():
    """JSON-format pushes (V-ENC-2) carry CreateTime as a number: it must still count."""
    as_text = _event(Event="CLICK", EventKey="K")
    as_number = {**as_text, "CreateTime": int(as_text["CreateTime"])}
    assert dedup_key_for(as_number) == dedup_key_for(as_text)
    assert dedup_key_for({**as_number, "CreateTime": as_number["CreateTime"] + 1}) != dedup_key_for(as_number)
    assert dedup_key_for({**HEADER, "MsgType": "text", "MsgId": 6054768590064713728}) == "msg:6054768590064713728"


def test_dedup_key_ignores_non_string_eventkey():
    key = dedup_key_for(_event(Event="CLICK", EventKey={"nested": "x"}))
    assert key == dedup_key_for(_event(Event="CLICK"))


# =============================================================================================
# Passive replies (§3.5)
# =============================================================================================

def _article(n: int) -> Article:
    return Article(title=f"t{n}", description="d", url=f"https://store.test/{n}", image="https://store.test/p.jpg")


def test_news_reply_to_a_user_message_allows_one_article():
    xml = news(_article(1)).render("openid", "gh_1", in_reply_to_message=True, now=1)
    fields = parse_xml(xml.encode())
    assert fields["ArticleCount"] == "1"
    assert fields["Articles"]["item"]["Url"] == "https://store.test/1"
    with pytest.raises(ReplyTooLarge):
        news(_article(1), _article(2)).render("openid", "gh_1", in_reply_to_message=True, now=1)


def test_news_reply_to_an_event_allows_eight_articles():
    xml = news(*[_article(n) for n in range(8)]).render("openid", "gh_1", in_reply_to_message=False, now=1)
    fields = parse_xml(xml.encode())
    assert fields["ArticleCount"] == "8"
    assert [item["Title"] for item in fields["Articles"]["item"]] == [f"t{n}" for n in range(8)]
    with pytest.raises(ReplyTooLarge):
        news(*[_article(n) for n in range(9)]).render("openid", "gh_1", in_reply_to_message=False, now=1)


def test_news_reply_needs_an_article():
    with pytest.raises(ReplyTooLarge):
        news().render("openid", "gh_1", in_reply_to_message=False, now=1)


@pytest.mark.parametrize(
    "content",
    ["]]>", "a]]>b", "]]>]]>", "x]]]]>y", "<![CDATA[inner]]>", "</Content></xml>", "tab\there\nnew line 中文 &amp; <b>"],
)
def test_text_reply_round_trips_through_parse_xml(content):
    xml = text(content).render("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "gh_10f6c3c3ac5a", True, now=1409735669)
    fields = parse_xml(xml.encode("utf-8"))
    assert fields == {
        "ToUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        "FromUserName": "gh_10f6c3c3ac5a",
        "CreateTime": "1409735669",
        "MsgType": "text",
        "Content": content,
    }


def test_reply_ids_cannot_inject_elements():
    """The ids come from the push, whose body is unsigned in plaintext mode (§11.2)."""
    evil = "o1]]></ToUserName><Content>evil</Content><ToUserName><![CDATA["
    fields = parse_xml(text("hello").render(evil, "gh_1", True, now=1).encode())
    assert fields["ToUserName"] == evil
    assert fields["Content"] == "hello"


def test_text_reply_drops_characters_xml_cannot_carry():
    xml = text("a\x01b\x1fc\ud800d").render("o1", "gh_1", True, now=1)
    assert parse_xml(xml.encode("utf-8"))["Content"] == "abcd"
    assert cdata_safe("line\r\nnext\ttab") == "line\r\nnext\ttab"  # legal whitespace stays


def test_article_fields_are_cdata_safe():
    article = Article(title="50% off ]]> today", description="<b>", url="https://s.test/?a=1&b=2", image="")
    fields = parse_xml(news(article).render("o1", "gh_1", False, now=1).encode())
    item = fields["Articles"]["item"]
    assert item["Title"] == "50% off ]]> today"
    assert item["Description"] == "<b>"
    assert item["Url"] == "https://s.test/?a=1&b=2"


def test_image_reply_shape():
    fields = parse_xml(image("MEDIA_ID").render("o1", "gh_1", True, now=7).encode())
    assert fields == {"ToUserName": "o1", "FromUserName": "gh_1", "CreateTime": "7", "MsgType": "image",
                      "Image": {"MediaId": "MEDIA_ID"}}


def test_transfer_customer_service_with_kf_account_matches_reference_shape():
    """§3.5 transfer_customer_service sample (from WxJava), field for field."""
    xml = transfer_to_customer_service("test1@test").render("touser", "fromuser", True, now=1399197672)
    assert parse_xml(xml.encode()) == parse_xml(TRANSFER_KF_SAMPLE.encode())
    assert "<TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo>" in xml
    assert xml.rstrip().endswith("</xml>")


def test_transfer_customer_service_without_kf_account():
    fields = parse_xml(transfer_to_customer_service().render("touser", "fromuser", True, now=1399197672).encode())
    expected = parse_xml(TRANSFER_KF_SAMPLE.encode())
    del expected["TransInfo"]
    assert fields == expected


def test_transfer_info_goes_at_the_end_even_if_an_id_says_xml():
    xml = transfer_to_customer_service("kf1@test").render("o</xml>1", "gh_1", True, now=1)
    fields = parse_xml(xml.encode())
    assert fields["ToUserName"] == "o</xml>1"
    assert fields["TransInfo"] == {"KfAccount": "kf1@test"}


def test_unknown_reply_kind_is_an_error():
    with pytest.raises(ValueError):
        Reply(kind="music").render("o1", "gh_1", True, now=1)


# A recorded reply, read back to be sent by customer service (webhook.deliver_late_reply).
@pytest.mark.parametrize("reply", [
    text("你好 ]]> <b>&amp;</b>"),
    image("media-123"),
    news(Article("双十二满 300 减 50", "全场", "https://store.example/a", "https://store.example/a.jpg")),
    news(Article("一"), Article("二", "说明")),
    transfer_to_customer_service(),
    transfer_to_customer_service("kf2001@store"),
], ids=["text", "image", "news-1", "news-2", "transfer", "transfer-kf"])
def test_a_rendered_reply_parses_back_to_itself(reply):
    xml = reply.render("oShopper", "gh_store", in_reply_to_message=False)
    assert parse_reply(parse_xml(xml.encode("utf-8"))) == reply


def test_a_reply_rendered_from_unsafe_text_parses_back_to_what_the_shopper_saw():
    xml = text("a\x00b]]>c").render("oShopper", "gh_store", True)
    assert parse_reply(parse_xml(xml.encode("utf-8"))) == text("ab]]>c")


@pytest.mark.parametrize("fields", [
    {"MsgType": "text"}, {"MsgType": "image", "Image": "m"}, {"MsgType": "news", "Articles": ""},
    {"MsgType": "music"}, {},
])
def test_what_is_not_a_reply_parses_to_none(fields):
    assert parse_reply(fields) is None
