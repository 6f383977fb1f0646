"""The emulator answers as WeChat does, so code that passes against it would pass against WeChat."""
from __future__ import annotations

import requests


def _token(base_url, settings) -> str:
    res = requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET,
        "force_refresh": False}).json()
    return res["access_token"]


def _send(base_url, token, openid, text="hi"):
    return requests.post(f"{base_url}/_emulator/cgi-bin/message/custom/send", params={"access_token": token},
                         json={"touser": openid, "msgtype": "text", "text": {"content": text}}).json()


def _shopper_says(base_url, openid, content="你好"):
    requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": content})


def _follow(base_url, openid):
    requests.post(f"{base_url}/_emulator/shopper/subscribe", json={"openid": openid})


def test_token_endpoints_check_the_credentials(app, base_url, settings):
    api = f"{base_url}/_emulator/cgi-bin"
    assert requests.get(f"{api}/token", params={"grant_type": "client_credential", "appid": settings.WECHAT_APPID,
                                                "secret": "wrong"}).json()["errcode"] == 40125
    assert requests.get(f"{api}/token", params={"grant_type": "client_credential", "appid": "wx0000000000000000",
                                                "secret": settings.WECHAT_SECRET}).json()["errcode"] == 40013
    assert requests.post(f"{api}/stable_token", json={"grant_type": "password", "appid": settings.WECHAT_APPID,
                                                      "secret": settings.WECHAT_SECRET}).json()["errcode"] == 40002


def test_stable_token_returns_the_same_token_until_forced(app, base_url, settings, emulator):
    first = _token(base_url, settings)
    assert _token(base_url, settings) == first
    forced = requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET,
        "force_refresh": True}).json()["access_token"]
    assert forced != first
    assert requests.get(f"{base_url}/_emulator/cgi-bin/menu/get", params={"access_token": first}).json()["errcode"] == 40001


def test_plain_token_endpoint_issues_a_new_token_each_call_and_keeps_the_old_for_five_minutes(app, base_url, settings):
    params = {"grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET}
    old = requests.get(f"{base_url}/_emulator/cgi-bin/token", params=params).json()["access_token"]
    new = requests.get(f"{base_url}/_emulator/cgi-bin/token", params=params).json()["access_token"]
    assert old != new
    info = f"{base_url}/_emulator/cgi-bin/menu/get"
    assert requests.get(info, params={"access_token": old}).json()["errcode"] == 46003  # valid token, no menu
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 301})
    assert requests.get(info, params={"access_token": old}).json()["errcode"] == 42001
    assert requests.get(info, params={"access_token": new}).json()["errcode"] == 46003


def test_customer_service_messages_need_an_open_window(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = next(iter(emulator.shoppers))
    assert _send(base_url, token, openid)["errcode"] == 45015  # never interacted
    assert _send(base_url, token, "o-nobody")["errcode"] == 40003


def test_a_user_message_opens_five_messages_for_48_hours(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = next(iter(emulator.shoppers))
    _follow(base_url, openid)
    _shopper_says(base_url, openid)
    assert [_send(base_url, token, openid, f"m{i}")["errcode"] for i in range(6)] == [0, 0, 0, 0, 0, 45047]
    _shopper_says(base_url, openid)
    assert _send(base_url, token, openid)["errcode"] == 0
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 48 * 3600 + 1})
    token = _token(base_url, settings)  # the clock jump expired the old token too
    assert _send(base_url, token, openid)["errcode"] == 45015


def test_a_follow_opens_three_messages_for_one_minute(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = next(iter(emulator.shoppers))
    _follow(base_url, openid)
    assert [_send(base_url, token, openid)["errcode"] for _ in range(4)] == [0, 0, 0, 45047]
    _follow(base_url, openid)
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 61})
    assert _send(base_url, token, openid)["errcode"] == 45015


def test_unfollowed_users_cannot_be_messaged(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = next(iter(emulator.shoppers))
    _follow(base_url, openid)
    _shopper_says(base_url, openid)
    requests.post(f"{base_url}/_emulator/shopper/unsubscribe", json={"openid": openid})
    assert _send(base_url, token, openid)["errcode"] == 45015


def test_news_customer_service_messages_carry_one_article(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    openid = next(iter(emulator.shoppers))
    _follow(base_url, openid)
    _shopper_says(base_url, openid)
    article = {"title": "t", "description": "d", "url": "https://example.com", "picurl": ""}
    two = requests.post(f"{base_url}/_emulator/cgi-bin/message/custom/send", params={"access_token": token},
                        json={"touser": openid, "msgtype": "news", "news": {"articles": [article, article]}}).json()
    assert two["errcode"] == 45008


def test_qr_codes_follow_wechats_limits(app, base_url, settings, emulator):
    token = _token(base_url, settings)
    url = f"{base_url}/_emulator/cgi-bin/qrcode/create"

    def create(body):
        return requests.post(url, params={"access_token": token}, json=body).json()

    assert create({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}})["errcode"] == 40053
    assert create({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}})["errcode"] == 40053
    temporary = create({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 7}}})
    assert temporary["expire_seconds"] == 60  # WeChat's default
    permanent = create({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "gate-1"}}})
    assert "expire_seconds" not in permanent and permanent["url"].startswith("http://weixin.qq.com/q/")
    image = requests.get(f"{base_url}/_emulator/cgi-bin/showqrcode", params={"ticket": permanent["ticket"]})
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert requests.get(f"{base_url}/_emulator/cgi-bin/showqrcode", params={"ticket": "nope"}).status_code == 404


def test_injected_faults_answer_with_wechats_codes_then_clear(app, base_url, settings):
    token = _token(base_url, settings)
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "menu/get", "errcode": 45009, "times": 2})
    get = lambda: requests.get(f"{base_url}/_emulator/cgi-bin/menu/get", params={"access_token": token}).json()  # noqa: E731
    assert [get()["errcode"], get()["errcode"], get()["errcode"]] == [45009, 45009, 46003]


def test_a_body_of_the_wrong_shape_gets_wechats_47001_naming_the_field(app, base_url, settings):
    token = _token(base_url, settings)
    cases = [("/cgi-bin/message/custom/send", {"touser": ["o1"], "msgtype": "text"}, "touser"),
             ("/cgi-bin/message/template/send", {"touser": "o1", "template_id": 7}, "template_id"),
             ("/cgi-bin/qrcode/create", {"action_name": "QR_STR_SCENE", "action_info": {"scene": "x"}},
              "action_info.scene"),
             ("/card/membercard/updateuser", {"code": "1", "bonus": "100"}, "bonus"),
             ("/cgi-bin/menu/create", [1, 2], "body")]
    for path, body, field in cases:
        answer = requests.post(f"{base_url}/_emulator{path}", params={"access_token": token}, json=body,
                               timeout=10).json()
        assert answer["errcode"] == 47001, (path, answer)
        assert answer["errmsg"].startswith(f"data format error hint: [{field}]"), (path, answer)
