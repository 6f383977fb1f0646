"""The emulator playing WeChat's OA template message API (reference §7.6).

The account's templates are the ones the service is configured with (the store's programme's
benefit template, the desk's fallback for answers outside the window, the reservations' notice,
brand news),
as if added in the MP console. The reservations' template is a current one: it shows its
keywords only (the legacy `first` and `remark` are ignored, as WeChat's template UI does).
A send to an unknown openid is 40003, to an unknown template 40037, to a shopper who does not
follow 43004; a repeated client_msg_id returns the first send's msgid and shows nothing new.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.api import _error, _state, shaped, wechat_api

bp = Blueprint("emulator_template_api", __name__)


def known_templates() -> set[str]:
    from flask import current_app

    from members.program import load_program

    s = current_app.extensions["wx"].settings
    extra = {t for t in (s.DESK_FALLBACK_TEMPLATE_ID, s.RESERVATION_TEMPLATE_ID, s.BRAND_NEWS_TEMPLATE_ID) if t}
    return {load_program().benefit_template_id} | extra


def template_keywords(template_id: str) -> tuple[str, ...] | None:
    """The keywords a template shows, for templates made in the current template UI, which
    ignores the legacy `first` and `remark` (§7.6); None: show every value (older templates)."""
    from flask import current_app

    if template_id == current_app.extensions["wx"].settings.RESERVATION_TEMPLATE_ID:
        return ("keyword1", "keyword2", "keyword3", "keyword4", "keyword5")
    return None


@bp.post("/cgi-bin/message/template/send")
@wechat_api("message/template/send")
def template_send():
    state = _state()
    body = shaped(shapes.TemplateSend)
    if body["template_id"] not in known_templates():
        return _error(40037, "invalid template_id")
    with state.lock:
        shopper = state.shoppers.get(body["touser"])
        if shopper is None:
            return _error(40003, "invalid openid")
        if not shopper.subscribed:
            return _error(43004, "require subscribe")
        client_msg_id = body.get("client_msg_id")
        if client_msg_id and client_msg_id in state.client_msg_ids:
            return jsonify(errcode=0, errmsg="ok", msgid=state.client_msg_ids[client_msg_id])
        msgid = state.next_msg_id()
        if client_msg_id:
            state.client_msg_ids[client_msg_id] = msgid
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        shown = template_keywords(body["template_id"])
        if shown is not None:
            data = {k: data[k] for k in shown if isinstance(data.get(k), dict)}
        text = "\n".join(str(v.get("value", "")) for v in data.values() if isinstance(v, dict))
        state.say(shopper.openid, "account", "text", "template", content=text, template_id=body["template_id"],
                  client_msg_id=client_msg_id or "", msgid=msgid, data=data)
    return jsonify(errcode=0, errmsg="ok", msgid=msgid)
