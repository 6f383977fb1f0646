"""The content console (/console/content), for the `marketing` role (and admins): stores and their
hours exceptions, brands, activities, new arrivals and discounts; image upload; publish now,
schedule, unpublish; and a preview of an item as the OA news card shoppers would get.

A thin edge over marketing's verbs: each write is one unit of work committed here (a refusal rolls
it back, so nothing changes), JSON in and out, CSRF by the console's guard. Forms show and take
times in store time (Asia/Shanghai, no daylight saving): the page sends "+08:00" with each.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, g, jsonify, render_template, request, url_for
from sqlalchemy import select

from marketing import activities, brands, cards, images, offers, publishing, stores
from marketing.editing import WEEKDAYS
from marketing.exceptions import ContentError, InvalidContent, NotAllowed, UnknownContent
from marketing.models import Activity, Brand, ContentImage, Discount, NewArrival, Store
from members.ledger import SHANGHAI
from members.staff import MARKETING
from wx_service.edges.console.auth import roles
from wx_service.edges.content_images import image_url
from wx_service.ground.extensions import db

bp = Blueprint("console_content", __name__, url_prefix="/console/content", template_folder="templates")

UPLOAD_CAP = images.MAX_BYTES + 64 * 1024  # the picture plus the multipart framing


@dataclass(frozen=True)
class Input:
    """One form field: name (as the domain calls it), label, and how it is entered: text,
    textarea, int, number, datetime, date, time, bool, words, store, brand, brands, image, hours."""

    name: str
    label: str
    kind: str = "text"


FORMS: dict[str, tuple[Input, ...]] = {
    "store": (Input("code", "Code 编码"), Input("name", "Name 名称"), Input("address", "Address 地址"),
              Input("phone", "Phone 电话"), Input("latitude", "Latitude 纬度", "number"),
              Input("longitude", "Longitude 经度", "number"), Input("weekly_hours", "Weekly hours 营业时间", "hours"),
              Input("sort_order", "Sort order 排序", "int"), Input("active", "Active 启用", "bool")),
    "brand": (Input("name", "Name 品牌名"), Input("name_en", "English name 英文名"), Input("store_id", "Store 门店", "store"),
              Input("floor", "Floor 楼层"), Input("counter_code", "Counter code 柜台编码"),
              Input("categories", "Categories 品类 (comma-separated)", "words"),
              Input("description", "Description 介绍", "textarea"), Input("logo_image_id", "Logo", "image"),
              Input("active", "Active 启用", "bool")),
    "activity": (Input("title", "Title 标题"), Input("summary", "Summary 摘要"), Input("body", "Body 正文", "textarea"),
                 Input("store_id", "Store 门店", "store"), Input("place", "Place 地点"),
                 Input("starts_at", "Starts 开始", "datetime"), Input("ends_at", "Ends 结束", "datetime"),
                 Input("brand_ids", "Brands taking part 参与品牌", "brands"),
                 Input("cover_image_id", "Cover 封面", "image")),
    "new_arrival": (Input("brand_id", "Brand 品牌", "brand"), Input("product", "Product 商品"),
                    Input("description", "Description 描述", "textarea"), Input("price_fen", "Price 价格 (yuan)", "money"),
                    Input("image_id", "Picture 图片", "image")),
    "discount": (Input("title", "Title 标题"), Input("description", "Description 描述", "textarea"),
                 Input("brand_id", "Brand 品牌 (none: store-wide)", "brand"), Input("store_id", "Store 门店", "store"),
                 Input("valid_from", "Valid from 开始", "date"), Input("valid_until", "Valid until 结束", "date"),
                 Input("image_id", "Picture 图片", "image")),
}
MODELS: dict[str, type] = {"store": Store, "brand": Brand, "activity": Activity, "new_arrival": NewArrival,
                           "discount": Discount}
LABELS = {"store": "Store 门店", "brand": "Brand 品牌", "activity": "Activity 活动", "new_arrival": "New arrival 新品",
          "discount": "Discount 优惠"}


def _save(noun: str, values: dict[str, Any], ident: int | None) -> Any:
    staff_id = g.staff.id
    if noun == "store":
        return stores.save_store(values, staff_id=staff_id, store_id=ident)
    if noun == "brand":
        return brands.save_brand(values, staff_id=staff_id, brand_id=ident)
    if noun == "activity":
        return activities.save_activity(values, staff_id=staff_id, activity_id=ident)
    if noun == "new_arrival":
        return offers.save_new_arrival(values, staff_id=staff_id, arrival_id=ident)
    return offers.save_discount(values, staff_id=staff_id, discount_id=ident)


def refusal(exc: ContentError):
    if isinstance(exc, InvalidContent):
        return jsonify(error=str(exc), errors=exc.errors), 400
    if isinstance(exc, UnknownContent):
        return jsonify(error=str(exc)), 404
    if isinstance(exc, NotAllowed):
        return jsonify(error=str(exc)), 409
    return jsonify(error=str(exc)), 400


def content_api(view: Callable[..., Any]) -> Callable[..., Any]:
    """One unit of work around the call (committed when it returns, rolled back on a refusal, so
    a refused write changes nothing), refusals as JSON."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            with db.unit_of_work():
                return view(*args, **kwargs)
        except ContentError as exc:
            return refusal(exc)
    return wrapped


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidContent({"body": "is a JSON object"})
    return body


def _noun(noun: str) -> str:
    if noun not in FORMS:
        raise UnknownContent(f"no such kind of content: {noun[:32]}")
    return noun


# -- reading, for the pages ----------------------------------------------------------------------

def local(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(SHANGHAI).strftime(fmt) if at is not None else ""


def _value(noun: str, item: Any, field: Input) -> Any:
    """A field's current value as the form shows it."""
    if item is None:
        return {"brands": [], "hours": {}, "bool": field.name == "active", "int": 0}.get(field.kind, "")
    if field.name == "brand_ids":
        return activities.brand_ids(item.id)
    value = getattr(item, field.name)
    if field.kind == "datetime":
        return local(value, "%Y-%m-%dT%H:%M")
    if field.kind == "date":
        return value.isoformat() if value else ""
    if field.kind == "money":
        return f"{value / 100:.2f}" if value is not None else ""
    if field.kind == "words":
        return ", ".join(value or [])
    return "" if value is None else value


def _images(ids: set[int]) -> dict[int, ContentImage]:
    return {ident: image for ident in ids if ident and (image := db.session.get(ContentImage, ident)) is not None}


def _lists() -> dict[str, list[dict[str, Any]]]:
    shown: dict[str, list[dict[str, Any]]] = {}
    shown["store"] = [{"id": s.id, "title": f"{s.name} ({s.code})", "status": "active" if s.active else "inactive",
                       "when": s.address} for s in stores.stores()]
    shown["brand"] = [{"id": b.id, "title": f"{b.name} {b.name_en}".strip(), "status": "active" if b.active else "inactive",
                       "when": f"{b.floor} {b.counter_code}".strip()} for b in brands.brands()]
    for noun, model in publishing.PUBLISHABLE.items():
        rows = db.session.scalars(select(model).order_by(model.id.desc()).limit(200)).all()
        shown[noun] = [{"id": item.id, "title": cards.news_card(item).title, "status": item.status,
                        "when": _when(item)} for item in rows]
    return shown


def _when(item: Any) -> str:
    if item.status == "scheduled":
        text = f"publishes {local(item.publish_at)}"
    elif item.status == "published":
        text = f"published {local(item.published_at)}"
    else:
        text = ""
    if item.unpublish_at is not None:
        text += f"{'; ' if text else ''}unpublishes {local(item.unpublish_at)}"
    return text


# -- pages ---------------------------------------------------------------------------------------

@bp.get("/")
@roles(MARKETING)
def index():
    with db.unit_of_work():
        return render_template("console/content_index.html", lists=_lists(), labels=LABELS)


@bp.get("/<noun>/new", defaults={"ident": None})
@bp.get("/<noun>/<int:ident>")
@roles(MARKETING)
def edit(noun: str, ident: int | None):
    if noun not in FORMS:
        abort(404)
    with db.unit_of_work():
        item = db.session.get(MODELS[noun], ident) if ident is not None else None
        if ident is not None and item is None:
            abort(404)
        values = {field.name: _value(noun, item, field) for field in FORMS[noun]}
        image_ids = {values[f.name] for f in FORMS[noun] if f.kind == "image" and values[f.name]}
        shown_images = {ident_: image_url(image) for ident_, image in _images(image_ids).items()}
        exceptions = stores.exceptions_of(item.id) if noun == "store" and item is not None else []
        return render_template("console/content_edit.html", noun=noun, label=LABELS[noun], item=item, ident=ident,
                               fields=FORMS[noun], values=values, images=shown_images, weekdays=WEEKDAYS,
                               store_choices=stores.stores(), brand_choices=brands.brands(),
                               publishable=noun in publishing.PUBLISHABLE, when=_when(item) if item is not None
                               and noun in publishing.PUBLISHABLE else "", local=local, exceptions=exceptions)


@bp.get("/<noun>/<int:ident>/preview")
@roles(MARKETING)
def preview(noun: str, ident: int):
    """The item as the OA news card a shopper would get: title, description, cover."""
    with db.unit_of_work():
        try:
            item = publishing.item_for(noun, ident)
        except UnknownContent:
            abort(404)
        card = cards.news_card(item)
        cover = db.session.get(ContentImage, card.image_id) if card.image_id else None
        return render_template("console/content_preview.html", noun=noun, label=LABELS[noun], item=item, card=card,
                               cover_url=image_url(cover), on_wechat=bool(cover and cover.wechat_url))


# -- writes (JSON) -------------------------------------------------------------------------------

@bp.post("/api/<noun>")
@roles(MARKETING)
@content_api
def create(noun: str):
    item = _save(_noun(noun), _body(), None)
    return jsonify(id=item.id, url=url_for("console_content.edit", noun=noun, ident=item.id)), 201


@bp.post("/api/<noun>/<int:ident>")
@roles(MARKETING)
@content_api
def update(noun: str, ident: int):
    item = _save(_noun(noun), _body(), ident)
    return jsonify(id=item.id, url=url_for("console_content.edit", noun=noun, ident=item.id))


@bp.post("/api/store/<int:ident>/hours")
@roles(MARKETING)
@content_api
def hours_exception(ident: int):
    """{day, opens, closes, note} (no times: closed that day), or {day, remove: true}."""
    body = _body()
    stores.set_hours_exception(ident, body.get("day"), opens=body.get("opens"), closes=body.get("closes"),
                               note=body.get("note") or "", remove=bool(body.get("remove")), staff_id=g.staff.id)
    return jsonify(ok=True)


def _publishable(noun: str) -> str:
    if noun not in publishing.PUBLISHABLE:
        raise UnknownContent(f"{noun[:32]} is not published content")
    return noun


def _state(item: Any) -> Any:
    return jsonify(id=item.id, status=item.status, when=_when(item))


@bp.post("/api/<noun>/<int:ident>/publish")
@roles(MARKETING)
@content_api
def publish(noun: str, ident: int):
    return _state(publishing.publish_now(_publishable(noun), ident, staff_id=g.staff.id))


@bp.post("/api/<noun>/<int:ident>/schedule")
@roles(MARKETING)
@content_api
def schedule(noun: str, ident: int):
    """{publish_at, unpublish_at}: instants with their zone (the page sends store time, +08:00)."""
    body = _body()
    return _state(publishing.schedule(_publishable(noun), ident, publish_at=body.get("publish_at") or None,
                                      unpublish_at=body.get("unpublish_at") or None, staff_id=g.staff.id))


@bp.post("/api/<noun>/<int:ident>/unpublish")
@roles(MARKETING)
@content_api
def unpublish(noun: str, ident: int):
    return _state(publishing.unpublish(_publishable(noun), ident, staff_id=g.staff.id))


@bp.before_request
def _allow_picture_uploads() -> None:
    """The app takes at most 1 MB a request; a picture may be 10 MB (checked again by the domain)."""
    if request.endpoint == "console_content.upload_image":
        request.max_content_length = UPLOAD_CAP


@bp.post("/api/images")
@roles(MARKETING)
def upload_image():
    """multipart `file`: a PNG or JPEG of at most 10 MB (by its bytes). 201 with a new image,
    200 with the one already kept for the same bytes."""
    if (request.content_length or 0) > UPLOAD_CAP:
        return jsonify(error="a picture is at most 10 MB", errors={"file": "is over 10 MB"}), 413
    picture = request.files.get("file")
    if picture is None:
        return jsonify(error="file: choose a PNG or JPEG picture", errors={"file": "is missing"}), 400
    data = picture.read(images.MAX_BYTES + 1)
    try:
        with db.unit_of_work():
            image, created = images.add_image(data, picture.filename or "", staff_id=g.staff.id)
            shaped = {"id": image.id, "sha256": image.sha256, "url": image_url(image), "size": image.size,
                      "content_type": image.content_type, "created": created}
    except ContentError as exc:
        return refusal(exc)
    return jsonify(shaped), 201 if created else 200
