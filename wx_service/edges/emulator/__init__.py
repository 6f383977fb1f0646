"""A local stand-in for WeChat, mounted at /_emulator only when WECHAT_EMULATOR is on.

It plays both sides the service talks to: WeChat's API servers (api.py) and the shopper's WeChat
app pushing messages to the webhook (shopper.py, with a page at /_emulator/). It is built from the
same protocol module as the service and checked against the published vectors, so agreeing with
it means agreeing with WeChat. Production settings refuse to start with it on.
"""
from __future__ import annotations

import base64
import binascii
import re

from flask import Blueprint, Flask, abort, jsonify, render_template, request

from wx_service.edges.emulator.api import bp as api_bp
from wx_service.edges.emulator.api import json_object
from wx_service.edges.emulator.card_api import bp as card_api_bp
from wx_service.edges.emulator.media_api import MEDIA_LIMITS
from wx_service.edges.emulator.media_api import bp as media_api_bp
from wx_service.edges.emulator.mp_api import bp as mp_api_bp
from wx_service.edges.emulator.oauth_api import bp as oauth_api_bp
from wx_service.edges.emulator.pay_api import bp as pay_api_bp
from wx_service.edges.emulator.pay_state import PayEmulatorState, load_platform_cert
from wx_service.edges.emulator.shopper import ShopperClient
from wx_service.edges.emulator.state import PREFIX, EmulatorState, Fault
from wx_service.edges.emulator.subscribe_api import bp as subscribe_api_bp
from wx_service.edges.emulator.subscribe_api import decisions_of
from wx_service.edges.emulator.template_api import bp as template_api_bp

page_bp = Blueprint("emulator_page", __name__, template_folder="templates")

MODES = ("plaintext", "compatible", "safe")
# The page's picture and voice actions carry the file base64'd in JSON: 4/3 of WeChat's image limit.
PAGE_MEDIA_BODY_CAP = MEDIA_LIMITS["image"] * 4 // 3 + 4096
IMAGE_TYPE = re.compile(r"image/[A-Za-z0-9.+-]{1,40}")


def _state() -> EmulatorState:
    from flask import current_app

    state: EmulatorState = current_app.extensions["wx_emulator"]
    if state.push_url is None:
        state.push_url = request.host_url.rstrip("/") + "/wechat"
    return state


def _body() -> dict:
    data = json_object()
    if data is None:
        abort(400, "a JSON object is expected")
    return data


@page_bp.get("/")
def shopper_page():
    return render_template("shopper.html")


@page_bp.get("/state")
def state_view():
    state = _state()
    with state.lock:
        return jsonify(
            account={"appid": state.appid, "original_id": state.original_id, "mode": state.push_mode,
                     "push_url": state.push_url},
            menu=state.menu,
            scenes=sorted({info["scene"] for info in state.qr_tickets.values()}),
            shoppers=[{"openid": s.openid, "nickname": s.nickname, "subscribed": s.subscribed,
                       "chat": s.chat} for s in state.shoppers.values()],
            calls=state.calls,
        )


@page_bp.get("/pay-panel/open-orders")
def pay_panel_open_orders():
    """Native orders still waiting to be paid, newest first: the shopper page's "scan a payment QR"
    picker (a person in a shop would point the phone at the counter's screen instead)."""
    emulator = _state()
    with emulator.lock:
        orders = [o for o in emulator.pay.orders.values()
                  if o.get("trade_type") == "NATIVE" and o.get("trade_state") == "NOTPAY" and o.get("code_url")]
        orders.sort(key=lambda o: o.get("created_at", 0), reverse=True)
        return jsonify(orders=[{"out_trade_no": o["out_trade_no"], "code_url": o["code_url"],
                                "amount_fen": o["amount"], "description": o.get("description", "")}
                               for o in orders[:20]])


def _media_bytes(data: dict, kind: str) -> bytes:
    """The base64 `data` of a page's picture or voice action, within WeChat's limit for `kind`."""
    try:
        raw = base64.b64decode(str(data.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        abort(400, "data is not base64")
    if not raw:
        abort(400, "empty file")
    if len(raw) > MEDIA_LIMITS[kind]:
        abort(413, f"over WeChat's {MEDIA_LIMITS[kind] // (1024 * 1024)} MB limit for a {kind}")
    return raw


@page_bp.post("/shopper/<action>")
def shopper_action(action: str):
    """The shopper's actions, each a JSON object with the shopper's `openid`:

    text {content} · click {key} · subscribe · unsubscribe · scan {scene} ·
    image {data: base64, content_type} · voice {data: base64, format: amr|mp3|speex} ·
    tap_menu {id, content} (an option of a msgmenu the shopper was sent) ·
    contact {session_from} (the mini-program's customer-service button) ·
    get_card {outer_str, ticket} · submit_card_form {name, phone, birthday} · view_card · del_card ·
    subscribe_popup {templates: {id: accept|reject}} (the OA's consent popup) ·
    location {latitude, longitude, label} (a location message) · report_location {latitude, longitude}
    (the LOCATION event WeChat sends as the shopper enters the chat)
    """
    if action in ("image", "voice"):
        request.max_content_length = PAGE_MEDIA_BODY_CAP
    state = _state()
    data = _body()
    openid = data.get("openid", "")
    if openid not in state.shoppers:
        abort(404, "unknown shopper")
    client = ShopperClient(state)
    if action == "text":
        content = str(data.get("content", "")).strip()
        if not content:
            abort(400, "empty message")
        return jsonify(client.text(openid, content))
    if action == "click":
        return jsonify(client.click(openid, str(data.get("key", ""))))
    if action == "subscribe":
        return jsonify(client.subscribe(openid))
    if action == "unsubscribe":
        return jsonify(client.unsubscribe(openid))
    if action == "scan":
        scene = str(data.get("scene", "")).strip()
        if not scene:
            abort(400, "no scene")
        return jsonify(client.scan(openid, scene))
    if action in ("location", "report_location"):
        try:
            latitude, longitude = float(data.get("latitude")), float(data.get("longitude"))
        except (TypeError, ValueError):
            abort(400, "latitude and longitude are numbers")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            abort(400, "latitude is -90..90 and longitude -180..180")
        if action == "location":
            return jsonify(client.location(openid, latitude, longitude, str(data.get("label", ""))[:100]))
        return jsonify(client.report_location(openid, latitude, longitude))
    if action == "image":
        content_type = str(data.get("content_type") or "image/jpeg")
        if not IMAGE_TYPE.fullmatch(content_type):
            abort(400, "content_type must be an image type")
        return jsonify(client.image(openid, _media_bytes(data, "image"), content_type))
    if action == "voice":
        fmt = str(data.get("format") or "amr").lower()
        if fmt not in ("amr", "mp3", "speex"):
            abort(400, "format is amr, mp3 or speex")
        return jsonify(client.voice(openid, _media_bytes(data, "voice"), fmt))
    if action == "contact":
        return jsonify(client.contact(openid, str(data.get("session_from", ""))))
    try:
        if action == "tap_menu":
            content = data.get("content")
            return jsonify(client.tap_menu(openid, str(data.get("id", "")),
                                           None if content is None else str(content)))
        if action == "get_card":
            outer_str = str(data.get("outer_str", ""))
            ticket = str(data.get("ticket", ""))
            card_id = next((cid for cid, c in state.cards.items() if ticket and ticket in c.get("qr", {})), "")
            if card_id:
                outer_str = state.cards[card_id]["qr"][ticket]
            return jsonify(client.get_card(openid, outer_str=outer_str, card_id=card_id))
        if action == "submit_card_form":
            return jsonify(client.submit_card_form(openid, str(data.get("name", "")), str(data.get("phone", "")),
                                                   str(data.get("birthday", ""))))
        if action == "subscribe_popup":
            return jsonify(client.subscribe_popup(openid, decisions_of(data)))
        if action == "view_card":
            return jsonify(client.view_card(openid))
        if action == "del_card":
            return jsonify(client.del_card(openid))
    except LookupError as exc:
        abort(409, str(exc))
    abort(404, "unknown action")


@page_bp.post("/control/mode")
def control_mode():
    mode = _body().get("mode")
    if mode not in MODES:
        abort(400, f"mode is one of {', '.join(MODES)}")
    _state().push_mode = mode
    return jsonify(mode=mode)


@page_bp.post("/control/faults")
def control_faults():
    data = _body()
    fault = Fault(api=str(data.get("api", "*")), errcode=data.get("errcode"), errmsg=str(data.get("errmsg", "")),
                  delay=float(data.get("delay", 0)), times=int(data.get("times", 1)))
    state = _state()
    with state.lock:
        state.faults.append(fault)
    return jsonify(ok=True)


@page_bp.post("/control/clock")
def control_clock():
    state = _state()
    state.clock_offset += float(_body().get("advance", 0))
    return jsonify(offset=state.clock_offset)


@page_bp.post("/control/expire-tokens")
def control_expire_tokens():
    _state().expire_all_tokens()
    return jsonify(ok=True)


@page_bp.post("/control/push-url")
def control_push_url():
    _state().push_url = str(_body().get("url"))
    return jsonify(ok=True)


@page_bp.post("/control/reset")
def control_reset():
    _state().reset()
    return jsonify(ok=True)


def _pay_state(app: Flask) -> PayEmulatorState:
    """WeChat Pay's side: its platform key (from EMULATOR_PAY_KEY_FILE when set, so the service's
    stored platform certificate matches) and, when the service has payments configured, its
    merchant, registered as a merchant registers in the merchant platform: certificate serial,
    public key, APIv3 key, and the apps bound to it (the OA and the mini-program)."""
    s = app.extensions["wx"].settings
    pay = PayEmulatorState(load_platform_cert(s.EMULATOR_PAY_KEY_FILE) if s.EMULATOR_PAY_KEY_FILE else None)
    config = app.extensions.get("wx_pay")
    if config is not None:
        pay.standing_merchants[config.mchid] = {
            "mchid": config.mchid, "appids": {s.WECHAT_APPID, s.mp_appid},
            "serial_no": config.signer.serial_no, "public_key": config.signer.private_key.public_key(),
            "apiv3_key": config.apiv3_key}
        pay.reset()
    return pay


def mount_emulator(app: Flask) -> EmulatorState:
    s = app.extensions["wx"].settings
    state = EmulatorState(s.WECHAT_APPID, s.WECHAT_SECRET, s.WECHAT_TOKEN, s.WECHAT_AES_KEY,
                          s.WECHAT_ORIGINAL_ID, s.EMULATOR_PUSH_TIMEOUT, pay=_pay_state(app))
    app.extensions["wx_emulator"] = state
    app.register_blueprint(api_bp, url_prefix=PREFIX, name="emulator_api")
    app.register_blueprint(card_api_bp, url_prefix=PREFIX)
    app.register_blueprint(mp_api_bp, url_prefix=PREFIX)
    app.register_blueprint(media_api_bp, url_prefix=PREFIX)
    app.register_blueprint(oauth_api_bp, url_prefix=PREFIX)
    app.register_blueprint(template_api_bp, url_prefix=PREFIX)
    app.register_blueprint(subscribe_api_bp, url_prefix=PREFIX)
    app.register_blueprint(pay_api_bp, url_prefix=PREFIX + "/pay")
    app.register_blueprint(page_bp, url_prefix=PREFIX)
    return state
