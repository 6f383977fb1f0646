"""The emulator playing WeChat's mini-program server APIs: code2Session and the phone number.

Paths, parameters and errcodes follow reference §8. The control endpoints play the phone: what
`wx.login()` and `<button open-type="getPhoneNumber">` would hand the mini-program, a code.
"""
from __future__ import annotations

import base64
import os

from flask import Blueprint, abort, jsonify, request

from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.api import _error, _refuse_code_exchange, _state, json_object, shaped, wechat_api
from wx_service.edges.emulator.state import Shopper

bp = Blueprint("emulator_mp_api", __name__)


@bp.get("/sns/jscode2session")
@wechat_api("jscode2session", needs_token=False)
def jscode2session():
    """§8.1: no access token; appid+secret; a single-use js_code (reuse 40163, unknown 40029)."""
    state = _state()
    args = request.args
    refused = _refuse_code_exchange(args, "js_code")
    if refused is not None:
        return refused
    code, shopper, _ = state.take_mp_code(args["js_code"], "login")
    if code:
        return _error(code, "code been used" if code == 40163 else "invalid code")
    assert shopper is not None
    if not state.mp_login_allowed(shopper):
        return _error(45011, "api minute-quota reach limit mustslower retry next minute")
    shopper.mp_session_key = base64.b64encode(os.urandom(16)).decode()
    return jsonify(openid=shopper.mp_openid, session_key=shopper.mp_session_key, unionid=shopper.unionid)


@bp.post("/wxa/business/getuserphonenumber")
@wechat_api("getuserphonenumber")
def getuserphonenumber():
    """§8.2: body {code[, openid]}; the code is single-use and lives 5 minutes."""
    state = _state()
    body = shaped(shapes.PhoneNumber)
    code, shopper, found = state.take_mp_code(body["code"], "phone")
    if code:
        return _error(code, "code been used" if code == 40163 else "invalid code")
    assert shopper is not None
    if body.get("openid") and body["openid"] != shopper.mp_openid:
        return _error(40029, "invalid code")  # WeChat checks the code belongs to that user
    pure, country = found["phone"], found["country_code"]
    return jsonify(errcode=0, errmsg="ok", phone_info={
        "phoneNumber": pure if country == 86 else f"+{country}{pure}", "purePhoneNumber": pure,
        "countryCode": country,
        "watermark": {"timestamp": int(state.now()), "appid": found.get("appid") or state.appid}})


# -- the phone's side --------------------------------------------------------------------------

def _shopper_from_body() -> tuple[dict, Shopper]:
    data = json_object()
    if data is None:
        abort(400, "a JSON object is expected")
    shopper = _state().mp_shopper(str(data.get("openid", "")))
    if shopper is None:
        abort(404, "unknown shopper")
    return data, shopper


@bp.post("/mp/login-code")
def mint_login_code():
    """What wx.login() returns on the shopper's phone. `openid` may be the OA or the MP openid."""
    _, shopper = _shopper_from_body()
    code = _state().mint_mp_code(shopper, "login")
    return jsonify(code=code, mp_openid=shopper.mp_openid, unionid=shopper.unionid)


@bp.post("/mp/phone-code")
def mint_phone_code():
    """What the getPhoneNumber button hands over once the shopper agrees. `appid` (tests only)
    makes WeChat's watermark name another app."""
    data, shopper = _shopper_from_body()
    phone = str(data.get("phone", ""))
    if not phone.isdigit() or not 5 <= len(phone) <= 15:
        abort(400, "phone is 5-15 digits, without the country code")
    code = _state().mint_mp_code(shopper, "phone", phone=phone, country_code=int(data.get("country_code", 86)),
                                 appid=str(data.get("appid", "")))
    return jsonify(code=code, mp_openid=shopper.mp_openid)


@bp.post("/mp/add-card")
def add_card():
    """What wx.addCard does on the phone: check the cardExt signature against a card api_ticket
    WeChat issued, then claim the card for the shopper (user_get_card reaches the OA's webhook)."""
    import json as json_lib

    from wx_service.edges.emulator.shopper import ShopperClient
    from wx_service.ground.protocol.signature import card_ext_signature

    data, shopper = _shopper_from_body()
    state = _state()
    card_id = str(data.get("card_id", ""))
    try:
        ext = json_lib.loads(str(data.get("card_ext", "")))
    except ValueError:
        abort(400, "cardExt is not JSON")
    if not isinstance(ext, dict):
        abort(400, "cardExt is not a JSON object")
    with state.lock:
        tickets = set(state.card_tickets)
    signed = any(card_ext_signature(ticket, str(ext.get("timestamp", "")), card_id, str(ext.get("nonce_str", "")))
                 == ext.get("signature") for ticket in tickets)
    if not signed:
        return jsonify(errMsg="addCard:fail signature error"), 400
    if state.push_url is None:
        state.push_url = request.host_url.rstrip("/") + "/wechat"
    try:
        outcome = ShopperClient(state).get_card(shopper.openid, outer_str="mini_program", card_id=card_id)
    except LookupError as exc:
        return jsonify(errMsg=f"addCard:fail {exc}"), 400
    return jsonify(errMsg="addCard:ok", **outcome)
