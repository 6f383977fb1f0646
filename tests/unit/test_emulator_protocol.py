"""The emulator's pushes checked against the published vectors and an independent implementation
(wechatpy's own WeChatCrypto), so the emulator cannot drift into agreeing with our bugs."""
from __future__ import annotations

from wechatpy.crypto import WeChatCrypto

from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.edges.emulator.state import EmulatorState
from wx_service.ground.protocol.xml import parse_xml


def _state(token: str, aes_key: str, appid: str) -> EmulatorState:
    return EmulatorState(appid, "secret", token, aes_key, "gh_10f6c3c3ac5a", 5.0)


def test_push_query_signature_matches_v_sig_1():
    state = _state("AAAAA", "A" * 43, "wxba5fad812f8e6fb9")
    query, _ = sign_and_wrap(state, "<xml></xml>", "plaintext", timestamp="1714036504", nonce="1514711492")
    assert query["signature"] == "f464b24fc39322e44b38aa78f5edd27bd1441696"


def test_push_query_signature_matches_v_sig_5():
    state = _state("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    query, _ = sign_and_wrap(state, "<xml></xml>", "safe", timestamp="1409735669", nonce="1320562132")
    assert query["signature"] == "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"


def test_safe_mode_push_decrypts_with_wechatpy_to_the_same_message():
    token, key, appid = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
    state = _state(token, key, appid)
    plain = build_push_xml([("ToUserName", "gh_10f6c3c3ac5a"), ("FromUserName", "oyORnuP8q7ou2gfYjqLzSIWZf0rs"),
                            ("CreateTime", 1409735668), ("MsgType", "text"), ("Content", "会员 ]]> <b>"),
                            ("MsgId", 6054768590064713728)])
    query, body = sign_and_wrap(state, plain, "safe", timestamp="1409735669", nonce="1320562132")
    assert query["encrypt_type"] == "aes"
    decrypted = WeChatCrypto(token, key, appid).decrypt_message(body, query["msg_signature"], query["timestamp"],
                                                                query["nonce"])
    assert decrypted == plain
    fields = parse_xml(decrypted.encode())
    assert fields["Content"] == "会员 ]]> <b>" and fields["MsgId"] == "6054768590064713728"
    assert set(parse_xml(body)) == {"ToUserName", "Encrypt"}


def test_compatible_mode_push_carries_both_copies():
    state = _state("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")
    plain = build_push_xml([("ToUserName", "gh_10f6c3c3ac5a"), ("FromUserName", "o1"), ("CreateTime", 1),
                            ("MsgType", "text"), ("Content", "hello"), ("MsgId", 1)])
    query, body = sign_and_wrap(state, plain, "compatible", timestamp="1458300676", nonce="260774613")
    fields = parse_xml(body)
    assert fields["Content"] == "hello" and fields["Encrypt"]
    assert WeChatCrypto("pamtest", state.aes_key, state.appid).decrypt_message(
        body, query["msg_signature"], query["timestamp"], query["nonce"]) == plain
