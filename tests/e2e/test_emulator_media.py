"""The emulator's media, msgmenu and mini-program contact, over real HTTP: temporary material as
WeChat's media/upload and media/get answer it, a shopper's pictures, voices, msgmenu taps and
contact-button entries pushed to the webhook as WeChat pushes them, and the windows they open."""
from __future__ import annotations

import base64

import requests
from sqlalchemy import select

from wx_service.ground.models import InboundPush
from wx_service.ground.protocol.xml import parse_xml

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
AMR = b"#!AMR\n" + bytes(32)
TIMEOUT = 15


# -- helpers ----------------------------------------------------------------------------------
def _token(base_url, settings) -> str:
    return requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET,
        "force_refresh": False}, timeout=TIMEOUT).json()["access_token"]


def _upload(base_url, token, kind="image", data=PNG, filename="a.png", content_type="image/png", field="media"):
    files = {field: (filename, data, content_type)} if field else None
    return requests.post(f"{base_url}/_emulator/cgi-bin/media/upload", params={"access_token": token, "type": kind},
                         files=files, data=None if field else {"x": "1"}, timeout=TIMEOUT).json()


def _get(base_url, token, media_id) -> requests.Response:
    return requests.get(f"{base_url}/_emulator/cgi-bin/media/get", params={"access_token": token, "media_id": media_id},
                        timeout=TIMEOUT)


def _send(base_url, token, body) -> dict:
    return requests.post(f"{base_url}/_emulator/cgi-bin/message/custom/send", params={"access_token": token},
                         json=body, timeout=TIMEOUT).json()


def _act(base_url, action, openid, **body) -> requests.Response:
    return requests.post(f"{base_url}/_emulator/shopper/{action}", json={"openid": openid, **body}, timeout=TIMEOUT)


def _clock(base_url, seconds) -> None:
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": seconds}, timeout=TIMEOUT)


def _rows(wx, openid) -> list[InboundPush]:
    with wx.db.unit_of_work() as session:
        return list(session.scalars(select(InboundPush).where(InboundPush.openid == openid).order_by(InboundPush.id)))


def _last_push_fields(emulator) -> dict:
    """The plaintext fields of the last push the emulator delivered (tests set plaintext mode)."""
    return parse_xml(emulator.pushes[-1]["body"].encode())


def _first(emulator) -> str:
    return next(iter(emulator.shoppers))


# -- media/upload and media/get ---------------------------------------------------------------
def test_uploaded_media_comes_back_with_its_type_and_a_file_name(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    answer = _upload(base_url, token)
    assert set(answer) == {"type", "media_id", "created_at"} and answer["type"] == "image"
    assert abs(answer["created_at"] - emulator.now()) < 5
    got = _get(base_url, token, answer["media_id"])
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-disposition"] == f'attachment; filename="{answer["media_id"]}.png"'
    voice = _upload(base_url, token, "voice", AMR, "v.amr", "audio/amr")
    assert _get(base_url, token, voice["media_id"]).content == AMR
    assert emulator.calls["media/upload"] == 2 and emulator.calls["media/get"] == 2


def test_unknown_and_expired_media_ids_are_40007(app, base_url, settings):
    token = _token(base_url, settings)
    assert _get(base_url, token, "nope").json() == {"errcode": 40007, "errmsg": "invalid media_id"}
    media_id = _upload(base_url, token)["media_id"]
    _clock(base_url, 3 * 24 * 3600 - 60)
    token = _token(base_url, settings)  # the jump expired the old token
    assert _get(base_url, token, media_id).content == PNG  # still within its 3 days
    _clock(base_url, 61)
    token = _token(base_url, settings)
    assert _get(base_url, token, media_id).json()["errcode"] == 40007


def test_upload_refuses_as_wechat_does(app, base_url, settings):
    token = _token(base_url, settings)
    assert _upload(base_url, token, kind="file") == {"errcode": 40004, "errmsg": "invalid media type"}
    assert _upload(base_url, token, field=None) == {"errcode": 41005, "errmsg": "media data missing"}
    assert _upload(base_url, token, data=b"")["errcode"] == 41005
    big_image = _upload(base_url, token, data=b"\xff" * (10 * 1024 * 1024 + 1), filename="big.jpg",
                        content_type="image/jpeg")
    assert big_image == {"errcode": 40009, "errmsg": "invalid image size"}
    assert _upload(base_url, token, "voice", b"#!AMR\n" + bytes(2 * 1024 * 1024), "v.amr",
                   "audio/amr")["errcode"] == 40006
    assert _upload(base_url, token, "thumb", bytes(64 * 1024 + 1), "t.jpg", "image/jpeg")["errcode"] == 40006
    assert _upload(base_url, token, "thumb", bytes(64 * 1024), "t.jpg", "image/jpeg")["type"] == "thumb"


def test_media_calls_go_through_the_token_check_and_faults(app, base_url, settings):
    assert _upload(base_url, "")["errcode"] == 40014
    assert requests.get(f"{base_url}/_emulator/cgi-bin/media/get", params={"media_id": "x"},
                        timeout=TIMEOUT).json()["errcode"] == 41001
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "media/upload", "errcode": -1}, timeout=TIMEOUT)
    token = _token(base_url, settings)
    assert _upload(base_url, token)["errcode"] == -1
    assert "media_id" in _upload(base_url, token)


def test_reset_forgets_the_media(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    media_id = _upload(base_url, token)["media_id"]
    emulator.reset()
    assert emulator.find_media(media_id) is None


# -- a shopper's pictures and voices --------------------------------------------------------------
def test_a_shoppers_picture_reaches_the_webhook_and_opens_the_message_window(app, wx, base_url, settings, emulator):
    emulator.push_mode = "plaintext"
    openid = _first(emulator)
    _act(base_url, "subscribe", openid)
    out = _act(base_url, "image", openid, data=base64.b64encode(PNG).decode(), content_type="image/png").json()
    assert out["delivered"] is True
    pushed = _last_push_fields(emulator)
    assert pushed["MsgType"] == "image" and pushed["MediaId"] == out["media_id"] and pushed["MsgId"].isdigit()
    assert pushed["PicUrl"] == f"{base_url}/_emulator/media/pic/{out['media_id']}"
    assert requests.get(pushed["PicUrl"], timeout=TIMEOUT).content == PNG
    row = _rows(wx, openid)[-1]
    assert row.msg_type == "image" and row.handler and row.dedup_key == f"msg:{pushed['MsgId']}"
    # The picture is material the service can fetch with media/get, as it could from WeChat.
    token = _token(base_url, settings)
    assert _get(base_url, token, out["media_id"]).content == PNG
    assert [_send(base_url, token, {"touser": openid, "msgtype": "text", "text": {"content": str(i)}})["errcode"]
            for i in range(6)] == [0, 0, 0, 0, 0, 45047]
    mine = [m for m in emulator.shoppers[openid].chat if m["from"] == "user" and m["kind"] == "image"]
    assert mine and mine[0]["media_id"] == out["media_id"]


def test_a_shoppers_voice_reaches_the_webhook(app, wx, base_url, emulator):
    emulator.push_mode = "plaintext"
    openid = _first(emulator)
    out = _act(base_url, "voice", openid, data=base64.b64encode(AMR).decode()).json()
    assert out["delivered"] is True
    pushed = _last_push_fields(emulator)
    assert (pushed["MsgType"], pushed["Format"], pushed["Recognition"]) == ("voice", "amr", "")
    assert pushed["MediaId"] == out["media_id"] and "PicUrl" not in pushed
    assert _rows(wx, openid)[-1].msg_type == "voice"
    assert emulator.find_media(out["media_id"]).data == AMR


def test_page_media_actions_refuse_what_is_not_a_file(app, base_url, emulator):
    openid = _first(emulator)
    assert _act(base_url, "image", openid, data="***", content_type="image/png").status_code == 400
    assert _act(base_url, "image", openid, data="", content_type="image/png").status_code == 400
    assert _act(base_url, "image", openid, data=base64.b64encode(PNG).decode(),
                content_type="text/html").status_code == 400
    assert _act(base_url, "voice", openid, data=base64.b64encode(AMR).decode(), format="wav").status_code == 400
    # A picture over 1 MB (the app's own cap) still goes through the page, as a phone photo would.
    photo = base64.b64encode(b"\xff\xd8" + bytes(1_500_000)).decode()
    assert _act(base_url, "image", openid, data=photo, content_type="image/jpeg").json()["delivered"] is True


# -- customer-service image, voice and msgmenu ---------------------------------------------------------
def test_customer_service_image_and_voice_need_a_live_media_id(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = _first(emulator)
    _act(base_url, "subscribe", openid)
    _act(base_url, "text", openid, content="有图吗")
    bad = _send(base_url, token, {"touser": openid, "msgtype": "image", "image": {"media_id": "nope"}})
    assert bad == {"errcode": 40007, "errmsg": "invalid media_id"}
    media_id = _upload(base_url, token)["media_id"]
    assert _send(base_url, token, {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}})["errcode"] == 0
    voice_id = _upload(base_url, token, "voice", AMR, "v.amr", "audio/amr")["media_id"]
    assert _send(base_url, token, {"touser": openid, "msgtype": "voice", "voice": {"media_id": voice_id}})["errcode"] == 0
    shown = [(m["kind"], m["media_id"]) for m in emulator.shoppers[openid].chat if m["via"] == "customer_service"]
    assert shown == [("image", media_id), ("voice", voice_id)]
    assert all(m["from"] == "account" for m in emulator.shoppers[openid].chat if m["via"] == "customer_service")


MENU = {"head_content": "您对本次服务是否满意？", "tail_content": "欢迎再次光临",
        "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}]}


def test_msgmenu_is_checked_shown_and_a_tap_pushes_bizmsgmenuid(app, wx, base_url, settings, emulator):
    emulator.push_mode = "plaintext"
    token = _token(base_url, settings)
    openid = _first(emulator)
    _act(base_url, "subscribe", openid)
    _act(base_url, "text", openid, content="人工")
    for broken, field in [({**MENU, "list": []}, "list"), ({**MENU, "list": [{"id": 101, "content": "满意"}]}, "list[0].id"),
                          ({**MENU, "list": [{"id": "1"}]}, "list[0].content"), ({**MENU, "head_content": 1}, "head_content")]:
        answer = _send(base_url, token, {"touser": openid, "msgtype": "msgmenu", "msgmenu": broken})
        assert answer["errcode"] == 47001 and f"[msgmenu.{field}]" in answer["errmsg"], answer
    assert _send(base_url, token, {"touser": openid, "msgtype": "msgmenu", "msgmenu": MENU})["errcode"] == 0
    shown = [m for m in emulator.shoppers[openid].chat if m["kind"] == "msgmenu"]
    assert len(shown) == 1 and shown[0]["list"] == MENU["list"] and shown[0]["from"] == "account"

    assert _act(base_url, "tap_menu", openid, id="999", content="满意").status_code == 409  # never shown
    out = _act(base_url, "tap_menu", openid, id="102", content="不满意").json()
    assert out["delivered"] is True
    pushed = _last_push_fields(emulator)
    assert (pushed["MsgType"], pushed["Content"], pushed["bizmsgmenuid"]) == ("text", "不满意", "102")
    assert "<bizmsgmenuid>102</bizmsgmenuid>" in emulator.pushes[-1]["body"]  # a number, bare, as WeChat writes it
    row = _rows(wx, openid)[-1]
    assert (row.msg_type, row.content) == ("text", "不满意")
    # The tap is a user message: it opens the 48 h window afresh.
    assert [_send(base_url, token, {"touser": openid, "msgtype": "text", "text": {"content": "谢谢"}})["errcode"]
            for _ in range(6)][-1] == 45047


# -- the mini-program's contact button -------------------------------------------------------------
def test_contact_pushes_user_enter_tempsession_with_session_from(app, wx, base_url, emulator):
    emulator.push_mode = "plaintext"
    openid = _first(emulator)
    out = _act(base_url, "contact", openid, session_from="counter:LANCOME").json()
    assert out["delivered"] is True and out["reply"] == "(no reply)"
    pushed = _last_push_fields(emulator)
    assert (pushed["MsgType"], pushed["Event"], pushed["SessionFrom"]) == ("event", "user_enter_tempsession",
                                                                          "counter:LANCOME")
    assert "MsgId" not in pushed
    row = _rows(wx, openid)[-1]
    assert (row.msg_type, row.event) == ("event", "user_enter_tempsession") and row.dedup_key.startswith("evt:")
    # The shopper's own line in the chat (the desk's greeting, sent by a job, may already follow it).
    entered = [line for line in emulator.shoppers[openid].chat if line.get("from") == "user"]
    assert entered[-1]["session_from"] == "counter:LANCOME"


def test_the_mini_programs_session_window_is_two_messages_for_one_minute(app, base_url, settings, emulator,
                                                                         run_jobs):
    openid = _first(emulator)  # not following the OA: the mini-program's window does not need it

    def send() -> int:
        return _send(base_url, _token(base_url, settings),
                     {"touser": openid, "msgtype": "text", "text": {"content": "您好"}})["errcode"]

    def greetings() -> int:  # the desk greets each entry by customer service: one of the two
        from service_desk.intake import GREETING

        return sum(1 for m in emulator.shoppers[openid].chat if m.get("content") == GREETING)

    assert send() == 45015
    _act(base_url, "contact", openid, session_from="order:WX123")
    run_jobs()
    assert greetings() == 1
    assert [send(), send()] == [0, 45047]
    _act(base_url, "contact", openid, session_from="product:SKU-42")  # another page, same second maybe
    run_jobs()
    assert greetings() == 2
    assert [send(), send()] == [0, 45047]
    _clock(base_url, 61)
    assert send() == 45015
