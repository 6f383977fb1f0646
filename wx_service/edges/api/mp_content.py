"""The store's content for the mini-program under /api/mp (issue 12): stores with today's hours
(nearest first when the mini-program sends its location), brands (filtered, paged by offset or
cursor), one brand with its new arrivals, current activities and today's discounts, activities,
new arrivals and discounts.

Thin, as mp_reservations.py: a sibling blueprint at the same prefix, the same bearer session, the
same JSON errors. Reads only, through marketing.listings, so the OA, the H5 pages and this API
agree on what is visible. Every query parameter is checked here: a malformed one is a 400 naming
it (`field`), never a 500; an unknown id is a 404. Times go out in the store's zone (+08:00), as
for reservations. The JSON shapes below are shared with the H5 pages (h5_content.py).
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from marketing import geo, listings
from marketing.models import Activity, Brand, Discount, NewArrival, Store
from wx_service.edges.api import mp_sessions
from wx_service.edges.api.mp import ApiError, authenticated, json_api_plumbing
from wx_service.edges.api.mp_bodies import MAX_ID, parse_day
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.links import public_url

bp = Blueprint("mp_content", __name__)

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_OFFSET = 100_000
MAX_TEXT = 64
DETAIL_ITEMS = 20  # a brand's page: at most this many new arrivals, activities and discounts

json_api_plumbing(bp, "mini-program content API")


# -- query parameters ------------------------------------------------------------------------------

def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", f"{name} {message}", field=name)


def arg_int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise _bad(name, f"must be an integer from {low} to {high}")
    return int(raw)


def arg_id(name: str) -> int | None:
    return arg_int(name, None, 1, MAX_ID)


def arg_text(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > MAX_TEXT or not raw.isprintable() or "\ufffd" in raw:
        raise _bad(name, f"must be printable text of at most {MAX_TEXT} characters")
    return raw.strip()


def arg_day(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_day(raw)
    except ValueError as exc:
        raise _bad(name, str(exc)) from None


def arg_float(name: str, low: float, high: float) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw) if len(raw) <= 32 and raw.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise _bad(name, f"must be a number from {low:g} to {high:g}")
    return value


def page_args() -> tuple[int, int]:
    return arg_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), arg_int("offset", 0, 0, MAX_OFFSET)


def encode_cursor(after: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(after), ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[str, int]:
    """The (name, id) a brands cursor continues after; anything else is a 400."""
    try:
        if len(raw) > 400:
            raise ValueError
        name, brand_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
        if not isinstance(name, str) or not isinstance(brand_id, int) or isinstance(brand_id, bool):
            raise ValueError
        return name, brand_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad("cursor", "is not a cursor this API gave out") from None


# -- JSON shapes (documented in mp_openapi.CONTENT_SCHEMAS) ----------------------------------------

def store_iso(at: datetime | None) -> str | None:
    return at.astimezone(listings.STORE_ZONE).isoformat(timespec="seconds") if at is not None else None


def image_url(image_id: int | None) -> str | None:
    path = listings.image_path(image_id)
    return public_url(path) if path else None


def _clock(value: Any) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def hours_json(hours: listings.DayHours) -> dict[str, Any]:
    return {"day": hours.day.isoformat(), "opens": _clock(hours.opens), "closes": _clock(hours.closes),
            "closed": hours.closed, "note": hours.note, "exceptional": hours.exceptional, "text": hours.describe()}


def store_json(store: Store, hours: listings.DayHours, km: float | None = None) -> dict[str, Any]:
    weekly = {}
    for key in listings.WEEKDAY_KEYS:
        pair = (store.weekly_hours or {}).get(key)
        weekly[key] = [str(pair[0]), str(pair[1])] if isinstance(pair, (list, tuple)) and len(pair) == 2 else None
    return {"id": store.id, "code": store.code, "name": store.name, "address": store.address or "",
            "phone": store.phone or "", "latitude": store.latitude, "longitude": store.longitude,
            "weekly_hours": weekly, "today": hours_json(hours),
            "distance_km": round(km, 1) if km is not None else None}


def brand_json(brand: Brand) -> dict[str, Any]:
    return {"id": brand.id, "name": brand.name, "name_en": brand.name_en or "", "store_id": brand.store_id,
            "floor": brand.floor or "", "counter": brand.counter_code or "",
            "categories": [str(c) for c in (brand.categories or [])], "description": brand.description or "",
            "logo_url": image_url(brand.logo_image_id)}


def brand_ref(brand: Brand) -> dict[str, Any]:
    return {"id": brand.id, "name": brand.name, "name_en": brand.name_en or ""}


def activity_json(activity: Activity, brands: list[Brand], *, body: bool = False) -> dict[str, Any]:
    shaped = {"id": activity.id, "title": activity.title, "summary": activity.summary or "",
              "store_id": activity.store_id, "place": activity.place or "",
              "starts_at": store_iso(activity.starts_at), "ends_at": store_iso(activity.ends_at),
              "cover_url": image_url(activity.cover_image_id), "brands": [brand_ref(b) for b in brands]}
    if body:
        shaped["body"] = activity.body or ""
    return shaped


def arrival_json(arrival: NewArrival, brand: Brand | None) -> dict[str, Any]:
    return {"id": arrival.id, "brand": brand_ref(brand) if brand else None, "product": arrival.product,
            "description": arrival.description or "", "price_fen": arrival.price_fen,
            "image_url": image_url(arrival.image_id),
            "published_at": store_iso(arrival.published_at or arrival.created_at)}


def discount_json(discount: Discount, brand: Brand | None) -> dict[str, Any]:
    return {"id": discount.id, "title": discount.title, "description": discount.description or "",
            "brand": brand_ref(brand) if brand else None, "store_id": discount.store_id,
            "valid_from": discount.valid_from.isoformat(), "valid_until": discount.valid_until.isoformat(),
            "image_url": image_url(discount.image_id)}


def activities_json(found: list[Activity], *, body: bool = False) -> list[dict[str, Any]]:
    brands = listings.brands_of_activities(a.id for a in found)
    return [activity_json(a, brands[a.id], body=body) for a in found]


def arrivals_json(found: list[NewArrival]) -> list[dict[str, Any]]:
    brands = listings.brands_by_id(a.brand_id for a in found)
    return [arrival_json(a, brands.get(a.brand_id)) for a in found]


def discounts_json(found: list[Discount]) -> list[dict[str, Any]]:
    brands = listings.brands_by_id(d.brand_id for d in found)
    return [discount_json(d, brands.get(d.brand_id)) for d in found]


def brand_detail(brand_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """One brand with its store, its newest arrivals, its activities not yet over and its
    discounts valid today: what the brand's H5 page and GET /brands/{id} show. None: unknown."""
    now = now or utcnow()
    brand = listings.brand(brand_id)
    if brand is None:
        return None
    store = listings.stores_by_id([brand.store_id]).get(brand.store_id) if brand.store_id else None
    arrivals, _ = listings.new_arrivals(brand_id=brand.id, limit=DETAIL_ITEMS, now=now, count=False)
    current, _ = listings.activities(brand_id=brand.id, limit=DETAIL_ITEMS, now=now, count=False)
    offers, _ = listings.discounts(brand_id=brand.id, limit=DETAIL_ITEMS, now=now, count=False)
    return {**brand_json(brand), "store": {"id": store.id, "name": store.name, "address": store.address or ""}
            if store else None,
            "new_arrivals": [arrival_json(a, brand) for a in arrivals], "activities": activities_json(current),
            "discounts": [discount_json(d, brand) for d in offers]}


def activity_detail(activity_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """One visible activity with its body, brands and store; None when unknown or not visible."""
    found = listings.activity(activity_id, now)
    if found is None:
        return None
    [shaped] = activities_json([found], body=True)
    store = listings.stores_by_id([found.store_id]).get(found.store_id) if found.store_id else None
    shaped["store"] = {"id": store.id, "name": store.name, "address": store.address or ""} if store else None
    return shaped


def _page(total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"total": total, "limit": limit, "offset": offset}


# -- routes ----------------------------------------------------------------------------------------

@bp.get("/stores")
@authenticated
def store_list(session: mp_sessions.MpSession) -> Response:
    """Active stores with today's hours; nearest first (with distance_km) given lat and lng."""
    lat, lng = arg_float("lat", -90, 90), arg_float("lng", -180, 180)
    if (lat is None) != (lng is None):
        raise _bad("lat" if lat is None else "lng", "is needed with the other coordinate")
    with db.unit_of_work():
        found = listings.stores_today()
        if lat is not None and lng is not None:
            placed = [(s, h, geo.haversine_km(lat, lng, s.latitude, s.longitude)
                       if s.latitude is not None and s.longitude is not None else None) for s, h in found]
            placed.sort(key=lambda item: (item[2] is None, item[2] or 0.0))
            shaped = [store_json(s, h, km) for s, h, km in placed]
        else:
            shaped = [store_json(s, h) for s, h in found]
    return jsonify(stores=shaped)


@bp.get("/brands")
@authenticated
def brand_list(session: mp_sessions.MpSession) -> Response:
    """Active brands by name, filtered by category, floor and store; paged by offset or cursor."""
    category, floor, store_id = arg_text("category"), arg_text("floor"), arg_id("store")
    limit, offset = page_args()
    raw_cursor = request.args.get("cursor") or None
    if raw_cursor and request.args.get("offset"):
        raise _bad("cursor", "and offset cannot be used together")
    after = decode_cursor(raw_cursor) if raw_cursor else None
    with db.unit_of_work():
        page = listings.brands(category=category, floor=floor, store_id=store_id, limit=limit, offset=offset,
                               after=after)
        shaped = [brand_json(b) for b in page.brands]
    return jsonify(brands=shaped, total=page.total, limit=limit, offset=None if after else offset,
                   next_cursor=encode_cursor(page.next_after) if page.next_after else None)


@bp.get("/brands/<int:brand_id>")
@authenticated
def brand_one(session: mp_sessions.MpSession, brand_id: int) -> Response:
    with db.unit_of_work():
        shaped = brand_detail(brand_id) if brand_id <= MAX_ID else None
    if shaped is None:
        raise ApiError(404, "not_found", f"no brand {brand_id}")
    return jsonify(brand=shaped)


@bp.get("/activities")
@authenticated
def activity_list(session: mp_sessions.MpSession) -> Response:
    """Visible activities, soonest first: not yet over, or overlapping from..to (store days)."""
    brand_id, store_id = arg_id("brand"), arg_id("store")
    from_day, to_day = arg_day("from"), arg_day("to")
    if from_day and to_day and from_day > to_day:
        raise _bad("to", "is before from")
    limit, offset = page_args()
    with db.unit_of_work():
        found, total = listings.activities(brand_id=brand_id, store_id=store_id, from_day=from_day, to_day=to_day,
                                           limit=limit, offset=offset)
        shaped = activities_json(found)
    return jsonify(activities=shaped, **_page(total, limit, offset))


@bp.get("/activities/<int:activity_id>")
@authenticated
def activity_one(session: mp_sessions.MpSession, activity_id: int) -> Response:
    with db.unit_of_work():
        shaped = activity_detail(activity_id) if activity_id <= MAX_ID else None
    if shaped is None:
        raise ApiError(404, "not_found", f"no activity {activity_id}")
    return jsonify(activity=shaped)


@bp.get("/new-arrivals")
@authenticated
def arrival_list(session: mp_sessions.MpSession) -> Response:
    """Visible new arrivals, newest first, of one brand or all."""
    brand_id = arg_id("brand")
    limit, offset = page_args()
    with db.unit_of_work():
        found, total = listings.new_arrivals(brand_id=brand_id, limit=limit, offset=offset)
        shaped = arrivals_json(found)
    return jsonify(new_arrivals=shaped, **_page(total, limit, offset))


@bp.get("/discounts")
@authenticated
def discount_list(session: mp_sessions.MpSession) -> Response:
    """Visible discounts valid today (or on `day`), of one brand or all, ending soonest first."""
    brand_id, day = arg_id("brand"), arg_day("day")
    limit, offset = page_args()
    with db.unit_of_work():
        found, total = listings.discounts(brand_id=brand_id, on_day=day, limit=limit, offset=offset)
        shaped = discounts_json(found)
    return jsonify(discounts=shaped, day=(day or listings.store_day()).isoformat(),
                   **_page(total, limit, offset))
