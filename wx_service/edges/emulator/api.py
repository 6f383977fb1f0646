"""The emulator playing WeChat's servers for every API the service calls.

Paths, bodies and errcodes follow the protocol reference. Each call first consults the injected
faults (an errcode, or a delay), then checks the access token as WeChat does.
"""
from __future__ import annotations

import functools
import secrets
import time

from flask import Blueprint, Response, current_app, jsonify, request

from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.state import ERRMSG, EmulatorState
from wx_service.ground.qr_images import qr_png_bytes
from wx_service.ground.validation import BadShape, Shape, loads, parse

bp = Blueprint("emulator_api", __name__)


def _state() -> EmulatorState:
    return current_app.extensions["wx_emulator"]


def _error(code: int, errmsg: str | None = None) -> Response:
    return jsonify(errcode=code, errmsg=errmsg or ERRMSG.get(code, "error"))


def _refuse_code_exchange(args, code_field: str) -> Response | None:
    """The checks WeChat makes on a secret-authenticated code exchange (web authorization's
    access_token, the mini-program's jscode2session), in its order; None when they pass."""
    state = _state()
    if args.get("grant_type") != "authorization_code":
        return _error(40002)
    if args.get("appid") != state.appid:
        return _error(40013)
    if args.get("secret") != state.secret:
        return _error(40125)
    if not args.get(code_field):
        return _error(41008, "missing code")
    return None


def json_object() -> dict | None:
    """The body as a JSON object, or None (not JSON, nested too deep, or not an object)."""
    try:
        data = loads(request.get_data())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def shaped(shape: type[Shape]) -> dict:
    """The request body, checked against `shape`, as the dict it came as (the view reads it
    knowing each field it reads has its type). Not its shape: BadShape, which wechat_api answers
    with WeChat's 47001 and pay_api with WeChat Pay's PARAM_ERROR."""
    try:
        raw = loads(request.get_data())
    except ValueError:
        raise BadShape("body", "is not JSON") from None
    parse(shape, raw)
    return raw


def wechat_api(api: str, needs_token: bool = True):
    """Wrap a view so that injected faults and the token check run first, as WeChat's would; a
    body of the wrong shape (see `shaped`) is answered as WeChat answers one: errcode 47001."""
    def wrap(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            refused = _gate(api, needs_token)
            if refused is not None:
                return refused
            try:
                return view(*args, **kwargs)
            except BadShape as exc:
                return _error(47001, f"data format error hint: [{exc.field}] {exc.problem}")
        return wrapped
    return wrap


def _gate(api: str, needs_token: bool = True) -> Response | None:
    """Faults first (as a flaky WeChat would answer), then the token check."""
    state = _state()
    state.count_call(api)
    fault = state.take_fault(api)
    if fault is not None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.errcode is not None:
            return _error(fault.errcode, fault.errmsg or None)
    if needs_token:
        code = state.check_token(request.args.get("access_token"))
        if code:
            return _error(code)
    return None


@bp.get("/cgi-bin/token")
@wechat_api("token", needs_token=False)
def token():
    state = _state()
    if request.args.get("grant_type") != "client_credential":
        return _error(40002)
    if request.args.get("appid") != state.appid:
        return _error(40013)
    if request.args.get("secret") != state.secret:
        return _error(40125)
    value, expires_in = state.issue_token()
    return jsonify(access_token=value, expires_in=expires_in)


@bp.post("/cgi-bin/stable_token")
@wechat_api("stable_token", needs_token=False)
def stable_token():
    state = _state()
    body = shaped(shapes.StableToken)
    if body.get("grant_type") != "client_credential":
        return _error(40002)
    if body.get("appid") != state.appid:
        return _error(40013)
    if body.get("secret") != state.secret:
        return _error(40125)
    value, expires_in = state.stable(bool(body.get("force_refresh")))
    return jsonify(access_token=value, expires_in=expires_in)


@bp.get("/cgi-bin/ticket/getticket")
@wechat_api("ticket/getticket")
def get_ticket():
    ticket = secrets.token_urlsafe(64)
    if request.args.get("type") == "wx_card":
        state = _state()
        with state.lock:
            state.card_tickets.add(ticket)  # wx.addCard checks cardExt signatures against these
    return jsonify(errcode=0, errmsg="ok", ticket=ticket, expires_in=7200)


@bp.post("/cgi-bin/message/custom/send")
@wechat_api("message/custom/send")
def custom_send():
    state = _state()
    if not request.get_data():
        return _error(44002)
    body = shaped(shapes.CustomSend)
    if not body["touser"] or not body["msgtype"]:
        return _error(47001)
    kind = body["msgtype"]
    payload = body.get(kind)
    if not isinstance(payload, dict):
        return _error(47001)
    if kind == "news":
        articles = payload.get("articles") or []
        if len(articles) != 1:
            return _error(45008)
    elif kind == "text" and not payload.get("content"):
        return _error(47001)
    elif kind == "wxcard" and payload.get("card_id") not in state.cards:
        return _error(40073, "invalid card id")
    elif kind in ("image", "voice"):
        media_id = payload.get("media_id")
        if not isinstance(media_id, str) or state.find_media(media_id) is None:
            return _error(40007)
    elif kind == "msgmenu":
        problem = msgmenu_problem(payload)
        if problem:
            return _error(47001, f"data format error hint: [msgmenu.{problem}]")
    code = state.use_window(body["touser"])
    if code:
        return _error(code)
    state.say(body["touser"], "account", kind, "customer_service", **payload)
    return jsonify(errcode=0, errmsg="ok")


def msgmenu_problem(payload: dict) -> str:
    """The field a msgmenu payload gets wrong ("" when none): `list` holds at least one item, each
    with string `id` and `content`; `head_content` and `tail_content` are strings when present."""
    for name in ("head_content", "tail_content"):
        if name in payload and not isinstance(payload[name], str):
            return name
    items = payload.get("list")
    if not isinstance(items, list) or not items:
        return "list"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f"list[{i}]"
        for name in ("id", "content"):
            if not isinstance(item.get(name), str) or not item[name]:
                return f"list[{i}].{name}"
    return ""


@bp.post("/cgi-bin/menu/create")
@wechat_api("menu/create")
def menu_create():
    body = shaped(shapes.MenuCreate)
    if not 1 <= len(body["button"]) <= 3:
        return _error(40016)
    _state().menu = body
    return jsonify(errcode=0, errmsg="ok")


@bp.get("/cgi-bin/menu/get")
@wechat_api("menu/get")
def menu_get():
    menu = _state().menu
    if menu is None:
        return _error(46003, "menu no exist")
    return jsonify(menu=menu)


@bp.post("/cgi-bin/qrcode/create")
@wechat_api("qrcode/create")
def qrcode_create():
    state = _state()
    body = shaped(shapes.QrcodeCreate)
    action = body["action_name"]
    scene = body["action_info"]["scene"]
    if action in ("QR_SCENE", "QR_LIMIT_SCENE"):
        value = scene.get("scene_id")
        limit_ok = isinstance(value, int) and (1 <= value <= 100000 if action == "QR_LIMIT_SCENE" else 0 < value < 2**32)
        if not limit_ok:
            return _error(40053, "invalid scene_id")
        value = str(value)
    elif action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
        value = scene.get("scene_str")
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            return _error(40053, "invalid scene_str")
    else:
        return _error(40053)
    permanent = action.startswith("QR_LIMIT")
    expire = None if permanent else min(int(body.get("expire_seconds") or 60), 2_592_000)
    ticket = secrets.token_urlsafe(48)
    url = f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"
    with state.lock:
        state.qr_tickets[ticket] = {"scene": value, "url": url, "permanent": permanent,
                                    "expires_at": None if permanent else state.now() + expire}
    result = {"ticket": ticket, "url": url}
    if expire is not None:
        result["expire_seconds"] = expire
    return jsonify(result)


@bp.get("/cgi-bin/showqrcode")
def showqrcode():
    # Lives on mp.weixin.qq.com, takes no access token; an unknown ticket is a 404.
    _state().count_call("showqrcode")
    found = _state().qr_tickets.get(request.args.get("ticket", ""))
    if found is None:
        return Response(status=404)
    return Response(qr_png_bytes(found["url"]), mimetype="image/png")


@bp.get("/cgi-bin/user/info")
@wechat_api("user/info")
def user_info():
    shopper = _state().shoppers.get(request.args.get("openid", ""))
    if shopper is None:
        return _error(40003)
    if not shopper.subscribed:
        return jsonify(subscribe=0, openid=shopper.openid)
    return jsonify(subscribe=1, openid=shopper.openid, nickname=shopper.nickname, language="zh_CN",
                   unionid=shopper.unionid, subscribe_time=int(time.time()), subscribe_scene="ADD_SCENE_QR_CODE")
