"""The OA's brand-subscription page (issue 12): every active brand with a subscribe/unsubscribe
toggle, for the shopper signed in by the OA web authorization (h5.py), like the reservation
pages, whose sign-in, CSRF and refusal plumbing it shares. A toggle is a POST with the session's
CSRF token, then a redirect (POST/redirect/GET). Opened from the OA menu (`?from=menu`) the
change is recorded with channel `oa_menu`, otherwise `h5`."""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from marketing import subscriptions
from wx_service.edges import h5
from wx_service.ground.extensions import db, settings

bp = Blueprint("h5_subscriptions", __name__, url_prefix="/h5/brand-subscriptions", template_folder="templates")

DONE = {"subscribed": "订阅成功 · Subscribed", "unsubscribed": "已退订 · Unsubscribed"}


bp.after_request(h5.no_store)


@bp.errorhandler(h5.Refused)
def _refused(exc: h5.Refused) -> tuple[str, int] | Response:
    if exc.status == 401:
        return redirect(url_for("h5.oauth_start", next=bp.url_prefix), code=302)
    return render_template("h5/res_error.html", message=exc.message, back=url_for("h5_subscriptions.page")), exc.status


def _origin(raw: str | None) -> str:
    return "menu" if raw == "menu" else ""


@bp.get("")
def page() -> Response | str:
    """The brands, each with its toggle."""
    openid = h5.signed_in_openid()
    if openid is None:
        return h5.sign_in()
    with db.unit_of_work():
        mine = subscriptions.subscribed_ids(openid)
        brands = [{"id": b.id, "name": b.name, "name_en": b.name_en, "floor": b.floor, "subscribed": b.id in mine}
                  for b in subscriptions.active_brands()]
    return render_template("h5/brand_subscriptions.html", brands=brands, csrf=h5.csrf_token(),
                           origin=_origin(request.args.get("from")), message=DONE.get(request.args.get("done", ""), ""),
                           cap=settings().BRAND_NEWS_WEEKLY_CAP)


@bp.post("/<int:brand_id>")
def toggle(brand_id: int) -> Response:
    openid = h5.form_openid()
    action = request.form.get("do")
    if action not in ("subscribe", "unsubscribe"):
        raise h5.Refused(400, "do is subscribe or unsubscribe")
    origin = _origin(request.form.get("from"))
    channel = "oa_menu" if origin == "menu" else "h5"
    with db.unit_of_work():
        try:
            if action == "subscribe":
                subscriptions.subscribe(openid, brand_id, channel, "h5 page")
            else:
                subscriptions.unsubscribe(openid, brand_id, channel, "h5 page")
        except subscriptions.UnknownBrand:
            raise h5.Refused(404, "没有这个品牌 · No such brand") from None
    args = {"done": "subscribed" if action == "subscribe" else "unsubscribed"}
    if origin:
        args["from"] = origin
    return redirect(url_for("h5_subscriptions.page", **args), code=303)
