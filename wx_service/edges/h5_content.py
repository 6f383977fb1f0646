"""The store's content as OA H5 pages (issue 12): an activity's page and a brand's page (floor,
counter, categories, logo, its new arrivals, current activities and today's discounts), laid out
for a phone in WeChat's browser. The OA's news cards open them; a QR or a campaign link may add
`?from=<scene or campaign key>`.

The shopper signs in first through the OA web authorization (h5.py), like the reservation pages.
Each view by a signed-in shopper records a `page_view` touch for the funnel (marketing.touches),
once per brand the page is about (an activity's brands; none: one touch without a brand), with
the campaign from `from`, in the page's own unit of work. The data is shaped once, by the
mini-program API's helpers (mp_content), so both show the same things.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request

from marketing import listings, touches
from members.identity import OA, member_for_openid
from wx_service.edges import h5
from wx_service.edges.api import mp_content as shapes
from wx_service.edges.api.mp_bodies import MAX_ID
from wx_service.ground.extensions import db

bp = Blueprint("h5_content", __name__, url_prefix="/h5", template_folder="templates")
log = logging.getLogger(__name__)

CAMPAIGN = re.compile(r"[A-Za-z0-9_\-.:]{1,64}")  # a QR scene or a campaign key
PAGE_VIEW = "page_view"


bp.after_request(h5.no_store)


@bp.app_template_filter("content_clock")
def content_clock(value: str | None) -> str:
    """2026-12-05T14:00:00+08:00 -> 12月05日 14:00 (the store's clock)."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(listings.STORE_ZONE).strftime("%m月%d日 %H:%M")


@bp.app_template_filter("content_price")
def content_price(fen: int) -> str:
    return f"¥{fen // 100}" if fen % 100 == 0 else f"¥{fen / 100:.2f}"


def campaign() -> str:
    """The `from` parameter when it is a scene or campaign key; anything else is dropped."""
    raw = request.args.get("from", "")
    return raw if CAMPAIGN.fullmatch(raw) else ""


def _missing() -> tuple[str, int]:
    return render_template("h5/content_missing.html"), 404


def record_view(openid: str, brand_ids: list[int], from_: str) -> None:
    """One page_view touch per brand the page shows (at least one), in the caller's unit of work."""
    member = member_for_openid(OA, openid)
    member_id = member.id if member is not None else None
    for brand_id in brand_ids or [None]:
        touches.record(PAGE_VIEW, openid=openid, member_id=member_id, campaign=from_, brand_id=brand_id)


def _carry(from_: str) -> str:
    """The query that keeps the campaign on links to the other content pages."""
    return "?" + urlencode({"from": from_}) if from_ else ""


@bp.get("/activities/<int:activity_id>")
def activity_page(activity_id: int) -> Response | tuple[str, int] | str:
    openid = h5.signed_in_openid()
    if openid is None:
        return h5.sign_in()
    from_ = campaign()
    with db.unit_of_work():
        shown = shapes.activity_detail(activity_id) if activity_id <= MAX_ID else None
        if shown is None:
            return _missing()
        record_view(openid, [b["id"] for b in shown["brands"]], from_)
    return render_template("h5/content_activity.html", activity=shown, carry=_carry(from_))


@bp.get("/brands/<int:brand_id>")
def brand_page(brand_id: int) -> Response | tuple[str, int] | str:
    openid = h5.signed_in_openid()
    if openid is None:
        return h5.sign_in()
    from_ = campaign()
    with db.unit_of_work():
        shown = shapes.brand_detail(brand_id) if brand_id <= MAX_ID else None
        if shown is None:
            return _missing()
        record_view(openid, [shown["id"]], from_)
    return render_template("h5/content_brand.html", brand=shown, carry=_carry(from_))
