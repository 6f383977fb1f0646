"""The mini-program's brand-subscription routes under /api/mp (issue 12): the brands with whether
the shopper follows each, subscribe (PUT) and unsubscribe (DELETE) one. Thin, as mp.py: the same
bearer session and JSON errors; each request one unit of work. Both writes are idempotent by
nature (PUT/DELETE of a state): a repeat answers the same state and writes no ledger row.

The one-time consents for the brand-news subscribe message are reported to POST
/subscribe-consents like every other template (mp_reservations.py): `subscribe_template_ids`
here says which template to ask for."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from marketing import subscriptions
from marketing.models import Brand
from members import consents
from wx_service.edges.api import mp_sessions
from wx_service.edges.api.mp import ApiError, authenticated, json_api_plumbing
from wx_service.edges.api.mp_bodies import MAX_ID
from wx_service.ground.extensions import db, settings

bp = Blueprint("mp_subscriptions", __name__)

json_api_plumbing(bp, "mini-program brand subscriptions API")


def brand_json(brand: Brand, subscribed: bool) -> dict:
    return {"id": brand.id, "name": brand.name, "name_en": brand.name_en, "floor": brand.floor,
            "subscribed": subscribed}


def _listing(openid: str) -> dict:
    template = settings().BRAND_NEWS_SUBSCRIBE_TEMPLATE_ID
    mine = subscriptions.subscribed_ids(openid)
    return {"brands": [brand_json(b, b.id in mine) for b in subscriptions.active_brands()],
            "subscribed": sorted(mine), "subscribe_template_ids": [template] if template else [],
            "consents_remaining": consents.remaining(openid, template) if template else 0}


@bp.get("/brand-subscriptions")
@authenticated
def mine(session: mp_sessions.MpSession) -> Response:
    """Every brand, and which of them the shopper hears of."""
    with db.unit_of_work():
        return jsonify(_listing(session.openid))


def _change(session: mp_sessions.MpSession, brand_id: int, subscribe: bool) -> Response:
    if not 1 <= brand_id <= MAX_ID:
        raise ApiError(404, "not_found", f"no brand {brand_id}")
    with db.unit_of_work():
        try:
            if subscribe:
                changed = subscriptions.subscribe(session.openid, brand_id, "mp", "mini-program")
            else:
                subscriptions.get_brand(brand_id)
                changed = subscriptions.unsubscribe(session.openid, brand_id, "mp", "mini-program")
        except subscriptions.UnknownBrand:
            raise ApiError(404, "not_found", f"no brand {brand_id}") from None
        brand = subscriptions.get_brand(brand_id)
        return jsonify(brand=brand_json(brand, subscribe), changed=changed)


@bp.put("/brands/<int:brand_id>/subscription")
@authenticated
def subscribe(session: mp_sessions.MpSession, brand_id: int) -> Response:
    """Hear of the brand's new arrivals and events."""
    return _change(session, brand_id, True)


@bp.delete("/brands/<int:brand_id>/subscription")
@authenticated
def unsubscribe(session: mp_sessions.MpSession, brand_id: int) -> Response:
    """Stop hearing of the brand."""
    return _change(session, brand_id, False)
