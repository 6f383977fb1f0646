"""The emulator playing WeChat's card (卡券) APIs: card/create, card/update, member card activation
and user info, updateuser, code get, card QR codes (reference §7).

Faults and the token check run first (the @wechat_api decorator), then each call is checked the
way WeChat checks it: an unknown card_id is 40073, an unknown or foreign code 40056."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response, jsonify

from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.api import _error, _state, shaped, wechat_api

bp = Blueprint("emulator_card_api", __name__)

REQUIRED_BASE_INFO = ("logo_url", "brand_name", "code_type", "title", "color", "notice", "date_info", "sku")
REQUIRED_MEMBER_CARD = ("base_info", "prerogative", "supply_bonus", "supply_balance")


def _code_entry(body: dict[str, Any]) -> tuple[dict[str, Any] | None, Response | None]:
    """The issued code a request names, or WeChat's error for it."""
    state = _state()
    entry = state.card_codes.get(str(body.get("code", "")))
    if entry is None or (body.get("card_id") and body["card_id"] != entry["card_id"]):
        return None, _error(40056)
    return entry, None


@bp.post("/card/create")
@wechat_api("card/create")
def card_create():
    body = shaped(shapes.CardCreate)
    card = body["card"]
    member_card = card["member_card"]
    if card["card_type"] != "MEMBER_CARD":
        return _error(47001)
    base_info = member_card.get("base_info") if isinstance(member_card.get("base_info"), dict) else {}
    missing = [f for f in REQUIRED_MEMBER_CARD if f not in member_card] + \
              [f for f in REQUIRED_BASE_INFO if f not in base_info]
    if missing:
        return _error(47001, f"data format error: missing {', '.join(missing)}")
    card_id = "pEmu" + secrets.token_urlsafe(18)[:24]
    state = _state()
    with state.lock:
        state.cards[card_id] = {"card": card, "form": None}
    return jsonify(errcode=0, errmsg="ok", card_id=card_id)


@bp.post("/card/update")
@wechat_api("card/update")
def card_update():
    body = shaped(shapes.CardUpdate)
    state = _state()
    found = state.cards.get(str(body.get("card_id", "")))
    if found is None:
        return _error(40073)
    with state.lock:
        found["card"]["member_card"].update(body["member_card"])
    return jsonify(errcode=0, errmsg="ok", send_check=False)


@bp.post("/card/membercard/activateuserform/set")
@wechat_api("card/membercard/activateuserform/set")
def activate_user_form_set():
    body = shaped(shapes.ActivateUserFormSet)
    state = _state()
    found = state.cards.get(str(body.get("card_id", "")))
    if found is None:
        return _error(40073)
    found["form"] = body
    return jsonify(errcode=0, errmsg="ok")


@bp.post("/card/membercard/userinfo/get")
@wechat_api("card/membercard/userinfo/get")
def userinfo_get():
    entry, refused = _code_entry(shaped(shapes.CardCode))
    if refused is not None:
        return refused
    shopper = _state().shoppers.get(entry["openid"])
    answers = entry.get("answers") or {}
    return jsonify(errcode=0, errmsg="ok", openid=entry["openid"], nickname=shopper.nickname if shopper else "",
                   membership_number=entry.get("membership_number", ""), bonus=entry["bonus"], balance=0, sex="",
                   user_info={"common_field_list": [{"name": k, "value": v} for k, v in answers.items()],
                              "custom_field_list": []},
                   user_card_status=entry["status"], has_active=entry["has_active"])


@bp.post("/card/membercard/activate")
@wechat_api("card/membercard/activate")
def membercard_activate():
    body = shaped(shapes.MembercardActivate)
    if not body["membership_number"] or not body["code"]:
        return _error(47001)
    entry, refused = _code_entry(body)
    if refused is not None:
        return refused
    with _state().lock:
        entry.update(has_active=True, membership_number=str(body["membership_number"]))
        if body.get("init_bonus") is not None:
            entry["bonus"] = body["init_bonus"]
        for i in (1, 2, 3):
            if body.get(f"init_custom_field_value{i}") is not None:
                entry["custom_fields"][i] = body[f"init_custom_field_value{i}"]
    return jsonify(errcode=0, errmsg="ok")


@bp.post("/card/membercard/updateuser")
@wechat_api("card/membercard/updateuser")
def membercard_updateuser():
    """`bonus` sets the total shown; `add_bonus` alone moves it by the delta (reference §7.4)."""
    body = shaped(shapes.MembercardUpdateUser)
    entry, refused = _code_entry(body)
    if refused is not None:
        return refused
    with _state().lock:
        if body.get("bonus") is not None:
            entry["bonus"] = body["bonus"]
        elif body.get("add_bonus") is not None:
            entry["bonus"] += body["add_bonus"]
        for i in (1, 2, 3):
            if body.get(f"custom_field_value{i}") is not None:
                entry["custom_fields"][i] = body[f"custom_field_value{i}"]
        entry.setdefault("updates", []).append(body)
    return jsonify(errcode=0, errmsg="ok", result_bonus=entry["bonus"], result_balance=0, openid=entry["openid"])


@bp.post("/card/code/get")
@wechat_api("card/code/get")
def code_get():
    entry, refused = _code_entry(shaped(shapes.CardCode))
    if refused is not None:
        return refused
    return jsonify(errcode=0, errmsg="ok", openid=entry["openid"],
                   card={"card_id": entry["card_id"], "begin_time": entry["issued_at"], "end_time": 0},
                   can_consume=entry["status"] == "NORMAL", user_card_status=entry["status"])


@bp.post("/card/qrcode/create")
@wechat_api("card/qrcode/create")
def card_qrcode_create():
    body = shaped(shapes.CardQrcodeCreate)
    if body["action_name"] != "QR_CARD":
        return _error(47001)
    card = body["action_info"]["card"]
    if card.get("card_id") not in _state().cards:
        return _error(40073)
    ticket = secrets.token_urlsafe(48)
    state = _state()
    with state.lock:  # the ticket remembers its channel: get_card(ticket=...) claims with this OuterStr
        state.cards[card["card_id"]].setdefault("qr", {})[ticket] = str(card.get("outer_str", ""))
    return jsonify(errcode=0, errmsg="ok", ticket=ticket, expire_seconds=body.get("expire_seconds") or 0,
                   url=f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}",
                   show_qrcode_url=f"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={ticket}")
