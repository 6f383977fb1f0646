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


def test_webhook_parser_keys_a_mini_program_contact_push_and_exposes_session_from():
    """user_enter_tempsession as the emulator pushes it (the mini-program's contact button): a
    stable event key (FromUserName+CreateTime+Event), the same for a retry, and SessionFrom kept."""
    from wx_service.ground.protocol.messages import build_push

    def contact(create_time: int, session_from: str) -> str:
        return build_push_xml([("ToUserName", "gh_10f6c3c3ac5a"), ("FromUserName", "oMpUser"),
                               ("CreateTime", create_time), ("MsgType", "event"),
                               ("Event", "user_enter_tempsession"), ("SessionFrom", session_from)])

    push = build_push(parse_xml(contact(1700000000, "counter:LANCOME").encode()))
    assert push.fields["SessionFrom"] == "counter:LANCOME"
    assert push.event == "user_enter_tempsession" and not push.is_user_message
    assert push.message.session_from == "counter:LANCOME"
    retry = build_push(parse_xml(contact(1700000000, "counter:LANCOME").encode()))
    assert push.dedup_key == retry.dedup_key and push.dedup_key.startswith("evt:")
    assert build_push(parse_xml(contact(1700000001, "counter:LANCOME").encode())).dedup_key != push.dedup_key


def test_webhook_parser_keeps_a_msgmenu_taps_bizmsgmenuid():
    """A tap on a msgmenu option is a text message carrying bizmsgmenuid; its key is its MsgId."""
    from wx_service.ground.protocol.messages import build_push

    xml = build_push_xml([("ToUserName", "gh_10f6c3c3ac5a"), ("FromUserName", "o1"), ("CreateTime", 1700000000),
                          ("MsgType", "text"), ("Content", "满意"), ("MsgId", 6054768590064713729),
                          ("bizmsgmenuid", 101)])
    push = build_push(parse_xml(xml.encode()))
    assert push.fields["bizmsgmenuid"] == "101" and push.fields["Content"] == "满意"
    assert push.dedup_key == "msg:6054768590064713729"
