"""The emulator playing WeChat's subscribe messages (reference §7.7) and the shopper's answers to
the consent popup.

`POST /cgi-bin/message/subscribe/send` as WeChat answers it: an unknown template 40037, a touser
who is not one of the account's users 40003, a value that breaks its keyword's rule 47003 (a
`thing` over 20 characters, a `time` that is not a date-time, a `phrase` over 5), and 43101 when
the shopper has no consent left for the template. Only a delivered message uses a consent; the
message then shows in the shopper's chat (WeChat's "service notifications").

The phone's side: `wx.requestSubscribeMessage` in the mini-program (`/mp/request-subscribe`) adds
one consent per accept and, like the store's mini-program, reports the accepts to the service's
API; the OA's H5 popup (the shopper page's `subscribe_popup` action, ShopperClient.subscribe_popup)
adds them and WeChat pushes
`subscribe_msg_popup_event` (§3.3) to the webhook. The emulator plays a single app in the demo,
so either openid of a shopper names them, and both popups feed one count per template.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import requests
from flask import Blueprint, abort, current_app, jsonify, request

from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.api import _error, _state, json_object, shaped, wechat_api
from wx_service.edges.emulator.state import EmulatorState, Shopper

bp = Blueprint("emulator_subscribe_api", __name__)

THING_MAX, PHRASE_MAX = 20, 5
# The date-times a `time` keyword takes (WeChat's examples: 2019年10月1日 15:01, 2019-10-01 15:01).
_TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日")
_KEYWORD = re.compile(r"([a-z_]+)([0-9]+)")


def subscribe_templates() -> dict[str, tuple[str, ...]]:
    """The account's subscribe templates, as if chosen in the MP console: id -> its keywords."""
    s = current_app.extensions["wx"].settings
    known: dict[str, tuple[str, ...]] = {}
    if s.RESERVATION_SUBSCRIBE_TEMPLATE_ID:
        known[s.RESERVATION_SUBSCRIBE_TEMPLATE_ID] = ("thing1", "time2", "thing3", "thing4", "phrase5")
    if s.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID:
        known[s.BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID] = ("thing1", "thing2", "time3", "thing4")
    return known


def value_problem(keyword: str, value: Any) -> str:
    """Why WeChat would refuse this value for this keyword ("" when it would not)."""
    if not isinstance(value, str) or not value:
        return "empty"
    kind = _KEYWORD.fullmatch(keyword).group(1) if _KEYWORD.fullmatch(keyword) else ""
    if kind == "thing" and len(value) > THING_MAX:
        return f"over {THING_MAX} characters"
    if kind == "phrase" and len(value) > PHRASE_MAX:
        return f"over {PHRASE_MAX} characters"
    if kind == "time":
        for fmt in _TIME_FORMATS:
            try:
                datetime.strptime(value, fmt)
                return ""
            except ValueError:
                continue
        return "not a date-time"
    return ""


@bp.post("/cgi-bin/message/subscribe/send")
@wechat_api("message/subscribe/send")
def subscribe_send():
    state = _state()
    body = shaped(shapes.SubscribeSend)
    keywords = subscribe_templates().get(body["template_id"])
    if keywords is None:
        return _error(40037)
    shopper = state.mp_shopper(body["touser"])
    if shopper is None:
        return _error(40003)
    data = body["data"]
    for keyword in keywords:
        entry = data.get(keyword)
        problem = value_problem(keyword, entry.get("value") if isinstance(entry, dict) else None)
        if problem:
            return _error(47003, f"argument invalid! data.{keyword}.value {problem}")
    with state.lock:
        if shopper.subscribe_consents.get(body["template_id"], 0) <= 0:
            return _error(43101)
        shopper.subscribe_consents[body["template_id"]] -= 1
        msgid = state.next_msg_id()
        values = {k: data[k]["value"] for k in keywords}
        state.say(shopper.openid, "account", "subscribe", "subscribe", content="\n".join(values.values()),
                  template_id=body["template_id"], page=body.get("page") or "", msgid=msgid, data=values)
    return jsonify(errcode=0, errmsg="ok", msgid=msgid)


# -- the phone's side --------------------------------------------------------------------------

def grant(state: EmulatorState, shopper: Shopper, decisions: dict[str, str]) -> dict[str, str]:
    """The shopper's answers in a consent popup: each accept is one more consent WeChat holds.
    Templates the account does not have are refused as wx.requestSubscribeMessage refuses them."""
    known = subscribe_templates()
    unknown = [t for t in decisions if t not in known]
    if unknown:
        raise LookupError(f"no subscribe template {unknown[0]!r} in this account")
    with state.lock:
        for template_id, answer in decisions.items():
            if answer == "accept":
                shopper.subscribe_consents[template_id] = shopper.subscribe_consents.get(template_id, 0) + 1
    return dict(decisions)


def decisions_of(data: dict) -> dict[str, str]:
    raw = data.get("templates")
    if isinstance(raw, list):
        raw = {str(t): "accept" for t in raw}
    if not isinstance(raw, dict) or not raw or len(raw) > 3:
        abort(400, "templates: 1 to 3 template ids (a list, or an object of id -> accept|reject)")
    if any(v not in ("accept", "reject") for v in raw.values()):
        abort(400, "each answer is accept or reject")
    return {str(k): str(v) for k, v in raw.items()}


@bp.post("/mp/request-subscribe")
def request_subscribe():
    """wx.requestSubscribeMessage on the shopper's phone: {openid, templates, api_token?}. With
    `api_token` (the mini-program's session), the accepts are reported to the service as the
    store's mini-program does (POST /api/mp/subscribe-consents)."""
    data = json_object()
    if data is None:
        abort(400, "a JSON object is expected")
    state = _state()
    shopper = state.mp_shopper(str(data.get("openid", "")))
    if shopper is None:
        abort(404, "unknown shopper")
    try:
        result = grant(state, shopper, decisions_of(data))
    except LookupError as exc:
        return jsonify(errMsg="requestSubscribeMessage:fail", errCode=20001, detail=str(exc)), 409
    reported = None
    if data.get("api_token"):
        reported = report_to_service(request.host_url.rstrip("/"), str(data["api_token"]), result)
    state.say(shopper.openid, "user", "subscribe_popup", "mini_program", content=" ".join(
        f"{t}:{a}" for t, a in result.items()))
    return jsonify(errMsg="requestSubscribeMessage:ok", **result, reported=reported)


def report_to_service(service_url: str, api_token: str, result: dict[str, str]) -> int:
    """What the store's mini-program does with wx.requestSubscribeMessage's answer: tell the
    service which templates were accepted. Returns the HTTP status."""
    accepted = [t for t, a in result.items() if a == "accept"]
    response = requests.post(f"{service_url}/api/mp/subscribe-consents", json={"accepted": accepted, "source": "mp-popup"},
                             headers={"Authorization": f"Bearer {api_token}"}, timeout=5)
    return response.status_code
