"""The content console over HTTP, as a marketing staff member uses it: forms save through the JSON
API (bad values answered field by field, nothing saved), CSRF on every write, pictures uploaded
and judged by their bytes, served publicly with cache headers, publish / schedule / unpublish,
and the preview of an item as the OA news card."""
from __future__ import annotations

import re

import requests
from sqlalchemy import func, select

from marketing.models import Activity, ContentImage
from members import staff as staff_service
from members.models import AuditEntry
from tests.e2e.desk_helpers import PASSWORD, make_plain_staff, sign_in
from tests.integration.content_helpers import JPEG, at, png
from tests.integration.members_helpers import uow


def marketing_console(app, base_url, username: str = "mei"):
    make_plain_staff(app, username)
    with uow(app):
        staff_service.grant_role(username, staff_service.MARKETING)
    return sign_in(base_url, username, PASSWORD)


def _upload(console, data: bytes, name: str = "cover.png", content_type: str = "image/png") -> requests.Response:
    return console.post("/console/content/api/images", files={"file": (name, data, content_type)})


def _activity(console, **values) -> int:
    made = console.post("/console/content/api/activity", {
        "title": "冬日美妆节", "summary": "免费肌肤测试 满800送礼盒", "starts_at": at(1).isoformat(),
        "ends_at": at(2).isoformat(), **values})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def test_a_store_and_a_brand_are_made_from_the_forms_api_and_bad_values_are_named(app, base_url):
    console = marketing_console(app, base_url)
    refused = console.post("/console/content/api/store", {"code": "SH 1", "name": "", "latitude": "north"})
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"code", "name", "latitude"}
    store = console.post("/console/content/api/store", {"code": "SH-1", "name": "静安店", "latitude": "31.2",
                                                        "longitude": "121.4", "weekly_hours": {"mon": "10:00-22:00"}})
    assert store.status_code == 201
    store_id = store.json()["id"]
    closed = console.post(f"/console/content/api/store/{store_id}/hours", {"day": "2027-01-01", "note": "元旦"})
    assert closed.status_code == 200
    page = console.get(f"/console/content/store/{store_id}")
    assert page.status_code == 200 and "2027-01-01" in page.text and "closed 休息" in page.text
    brand = console.post("/console/content/api/brand", {"name": "兰蔻", "counter_code": "LANCOME",
                                                        "store_id": store_id, "categories": "美妆,护肤"})
    assert brand.status_code == 201
    assert console.post("/console/content/api/brand", {"name": "兰蔻"}).json()["errors"] == {
        "name": "another brand is called 兰蔻"}
    assert console.post("/console/content/api/gadget", {"name": "x"}).status_code == 404
    for noun in ("store", "brand", "activity", "new_arrival", "discount"):
        assert console.get(f"/console/content/{noun}/new").status_code == 200, noun
    assert console.get("/console/content/gadget/new").status_code == 404
    listing = console.get("/console/content/")
    assert "静安店 (SH-1)" in listing.text and "兰蔻" in listing.text
    with uow(app) as session:
        who = staff_service.get_staff("mei").id
        assert {e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.staff_id == who))} == {
            "content.store.create", "content.store.update", "content.brand.create"}


def test_every_write_needs_the_csrf_token(app, base_url):
    console = marketing_console(app, base_url)
    refused = console.post("/console/content/api/activity", {"title": "x"}, csrf="wrong")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    upload = console.post("/console/content/api/images", csrf="", files={"file": ("a.png", png(), "image/png")})
    assert upload.status_code == 403
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(ContentImage)) == 0
        assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_pictures_upload_by_their_bytes_once_and_are_served_publicly_with_cache_headers(app, base_url, run_jobs):
    console = marketing_console(app, base_url)
    picture = png()
    first = _upload(console, picture, "封面.gif", "image/gif")  # the name and the browser's word do not count
    assert first.status_code == 201 and first.json()["content_type"] == "image/png"
    again = _upload(console, picture, "other-name.png")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert _upload(console, JPEG, "photo.jpg", "image/jpeg").status_code == 201
    fake = _upload(console, b"<svg onload=alert(1)>", "evil.png")
    assert fake.status_code == 400 and "not a PNG or JPEG" in fake.json()["error"]
    huge = _upload(console, picture + bytes(10 * 1024 * 1024 + 1))
    assert huge.status_code in (400, 413) and "10 MB" in huge.json()["error"]
    assert console.post("/console/content/api/images", {}).status_code == 400

    url = first.json()["url"]
    assert re.fullmatch(r"/content/images/[0-9a-f]{64}\.png", url)
    served = requests.get(base_url + url, timeout=10)  # no session: anyone, e.g. WeChat's browser
    assert served.status_code == 200 and served.content == picture
    assert served.headers["Content-Type"] == "image/png"
    assert "public" in served.headers["Cache-Control"] and "immutable" in served.headers["Cache-Control"]
    assert served.headers["X-Content-Type-Options"] == "nosniff" and "Set-Cookie" not in served.headers
    revalidated = requests.get(base_url + url, headers={"If-None-Match": served.headers["ETag"]}, timeout=10)
    assert revalidated.status_code == 304
    assert requests.get(base_url + url.replace(".png", ".jpg"), timeout=10).status_code == 404
    by_id = requests.get(f"{base_url}/content/images/{first.json()['id']}", timeout=10)  # what shoppers' pages carry
    assert by_id.status_code == 200 and by_id.content == picture and by_id.headers["ETag"] == served.headers["ETag"]
    assert requests.get(f"{base_url}/content/images/999999", timeout=10).status_code == 404
    run_jobs()
    with uow(app) as session:
        assert all(image.wechat_media_id for image in session.scalars(select(ContentImage)))


def test_an_activity_is_scheduled_published_and_unpublished_from_the_console(app, base_url):
    console = marketing_console(app, base_url)
    bad = console.post("/console/content/api/activity", {"title": "x", "starts_at": at(2).isoformat(),
                                                         "ends_at": at(1).isoformat()})
    assert bad.status_code == 400 and bad.json()["errors"] == {"ends_at": "ends after it starts"}
    activity_id = _activity(console)
    api = f"/console/content/api/activity/{activity_id}"
    past = console.post(f"{api}/schedule", {"publish_at": at(-1).isoformat()})
    assert past.status_code == 400 and "future" in past.json()["errors"]["publish_at"]
    scheduled = console.post(f"{api}/schedule", {"publish_at": at(1).isoformat(), "unpublish_at": at(3).isoformat()})
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    assert "publishes" in scheduled.json()["when"] and "unpublishes" in scheduled.json()["when"]
    published = console.post(f"{api}/publish")
    assert published.json()["status"] == "published"
    assert console.post(f"{api}/publish").status_code == 409
    assert console.post(f"{api}/unpublish").json()["status"] == "unpublished"
    assert console.post("/console/content/api/store/1/publish").status_code == 404
    edited = console.post(api, {"title": "冬日美妆节（延期）"})
    assert edited.status_code == 200
    page = console.get("/console/content/")
    assert "冬日美妆节（延期）" in page.text and "status-unpublished" in page.text
    with uow(app) as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).where(
            AuditEntry.subject == f"activity:{activity_id}").order_by(AuditEntry.id))]
        assert actions == ["content.activity.create", "content.activity.schedule", "content.activity.publish",
                           "content.activity.unpublish", "content.activity.update"]


def test_the_preview_shows_the_item_as_the_oa_news_card(app, base_url):
    console = marketing_console(app, base_url)
    cover = _upload(console, png((10, 120, 200))).json()
    activity_id = _activity(console, cover_image_id=cover["id"])
    page = console.get(f"/console/content/activity/{activity_id}/preview")
    assert page.status_code == 200
    assert re.search(r'id="news-title">冬日美妆节<', page.text)
    assert re.search(r'id="news-description">免费肌肤测试 满800送礼盒<', page.text)
    assert f'id="news-cover" src="{cover["url"]}"' in page.text
    assert console.get("/console/content/activity/999/preview").status_code == 404
    brand = console.post("/console/content/api/brand", {"name": "兰蔻"}).json()["id"]
    arrival = console.post("/console/content/api/new_arrival", {"brand_id": brand, "product": "小黑瓶",
                                                               "price_fen": 108050}).json()["id"]
    card = console.get(f"/console/content/new_arrival/{arrival}/preview").text
    assert "兰蔻 新品：小黑瓶" in card and "¥1080.50" in card and 'id="news-no-cover"' in card
    discount = console.post("/console/content/api/discount", {"title": "满300减50", "description": "全场",
                                                              "valid_from": "2026-12-05", "valid_until": "2026-12-07"})
    card = console.get(f"/console/content/discount/{discount.json()['id']}/preview").text
    assert re.search(r'id="news-description">全场 12月05日至12月07日<', card)
    form = console.get(f"/console/content/new_arrival/{arrival}").text  # the price is shown in yuan
    assert 'id="f-price_fen" value="1080.50"' in form and f'<option value="{brand}" selected>' in form
