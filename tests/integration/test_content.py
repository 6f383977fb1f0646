"""The content's written side: stores, hours exceptions, brands, activities, new arrivals and
discounts checked (a bad value changes nothing) and audited in the same unit of work; publishing
now, on a schedule and taking down, each move once (compare-and-swap on status), including when
the scheduler's own job runs twice or twice at once; images accepted by their bytes, kept once per
sha256 and sent to the emulated WeChat as permanent material after commit."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketing import activities, brands, images, offers, publishing, stores
from marketing.exceptions import InvalidContent, NotAllowed, UnknownContent
from marketing.models import Activity, ActivityBrand, Brand, ContentImage, Store, StoreHoursException
from tests.conftest import requires_postgres, requires_redis
from tests.integration.content_helpers import JPEG, at, entries, png
from tests.integration.members_helpers import make_staff, uow
from tests.integration.test_member_cli import restore_tz  # noqa: F401  (a fixture: the scheduler sets TZ)
from wx_service.edges.schedule import SWEEP_JOBS
from wx_service.ground.db import utcnow
from wx_service.ground.queue import run_job

HOURS = {"mon": ["10:00", "22:00"], "sat": "10:00-22:30"}


def _store(app, staff_id, code="SH-1") -> int:
    with uow(app):
        return stores.save_store({"code": code, "name": "静安店", "latitude": 31.22, "longitude": 121.45,
                                  "weekly_hours": HOURS}, staff_id=staff_id).id


def _brand(app, staff_id, name="兰蔻", counter="LANCOME", store_id=None) -> int:
    with uow(app):
        return brands.save_brand({"name": name, "counter_code": counter, "store_id": store_id,
                                  "categories": "美妆, 护肤"}, staff_id=staff_id).id


def _activity(app, staff_id, **values) -> int:
    with uow(app):
        return activities.save_activity({"title": "冬日美妆节", "summary": "免费肌肤测试", "starts_at": at(1),
                                         "ends_at": at(3), **values}, staff_id=staff_id).id


# -- stores, brands, items: checked, audited -------------------------------------------------------

def test_a_store_is_created_and_edited_with_its_hours_and_each_write_is_audited(app):
    staff = make_staff(app, "mkt")
    store_id = _store(app, staff)
    with uow(app) as session:
        store = session.get(Store, store_id)
        assert store.weekly_hours == {"mon": ["10:00", "22:00"], "sat": ["10:00", "22:30"]}
        stores.save_store({"phone": "021-5555-0101", "name": "静安店"}, staff_id=staff, store_id=store_id)
    with uow(app) as session:
        logged = entries(session)
        assert [(e.action, e.subject, e.staff_id) for e in logged] == [
            ("content.store.create", f"store:{store_id}", staff), ("content.store.update", f"store:{store_id}", staff)]
        assert logged[0].before is None and logged[0].after["code"] == "SH-1"
        # Only what changed: the phone, not the name given again unchanged.
        assert logged[1].before == {"phone": ""} and logged[1].after == {"phone": "021-5555-0101"}


def test_bad_store_values_are_named_and_nothing_changes(app):
    staff = make_staff(app, "mkt")
    store_id = _store(app, staff)
    with uow(app):
        with pytest.raises(InvalidContent) as refused:
            stores.save_store({"name": "新名字", "latitude": 95, "weekly_hours": {"mon": "22:00-10:00"}},
                              staff_id=staff, store_id=store_id)
        assert set(refused.value.errors) == {"latitude", "weekly_hours"}
        assert "closes after it opens" in str(refused.value)
        assert isinstance(refused.value, ValueError)
        with pytest.raises(InvalidContent, match="another store has the code SH-1"):
            stores.save_store({"code": "SH-1", "name": "又一家"}, staff_id=staff)
        with pytest.raises(InvalidContent) as missing:
            stores.save_store({"address": "somewhere", "colour": "red"}, staff_id=staff)
        assert missing.value.errors == {"colour": "is not a field of this item", "code": "is required",
                                        "name": "is required"}
    with uow(app) as session:
        assert session.get(Store, store_id).name == "静安店"
        assert session.scalar(select(func.count()).select_from(Store)) == 1
        assert len(entries(session)) == 1


def test_a_day_closed_or_with_other_hours_is_kept_audited_and_removable(app):
    staff = make_staff(app, "mkt")
    store_id = _store(app, staff)
    day = (utcnow() + timedelta(days=20)).date()
    with uow(app):
        stores.set_hours_exception(store_id, day.isoformat(), note="盘点闭店", staff_id=staff)
        stores.set_hours_exception(store_id, day + timedelta(days=1), opens="10:00", closes="23:30", staff_id=staff)
        with pytest.raises(InvalidContent, match="closes after it opens"):
            stores.set_hours_exception(store_id, day, opens="22:00", closes="10:00", staff_id=staff)
        with pytest.raises(InvalidContent, match="give both times"):
            stores.set_hours_exception(store_id, day, opens="10:00", staff_id=staff)
    with uow(app) as session:
        shown = [(e.day, e.opens, e.note) for e in stores.exceptions_of(store_id)]
        assert shown[0] == (day, None, "盘点闭店") and str(shown[1][1]) == "10:00:00"
        stores.set_hours_exception(store_id, day, remove=True, staff_id=staff)
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(StoreHoursException)) == 1
        logged = [e for e in entries(session) if any(k.startswith("hours ") for k in (e.after or {}))]
        key = f"hours {day.isoformat()}"
        assert logged[0].after == {key: {"closed": True, "note": "盘点闭店"}}
        assert logged[-1].before == {key: {"closed": True, "note": "盘点闭店"}} and logged[-1].after == {key: None}


def test_a_brand_names_its_counter_and_refuses_an_unknown_store_or_image(app):
    staff = make_staff(app, "mkt")
    store_id = _store(app, staff)
    brand_id = _brand(app, staff, store_id=store_id)
    with uow(app) as session:
        brand = session.get(Brand, brand_id)
        assert (brand.counter_code, brand.categories, brand.store_id) == ("LANCOME", ["美妆", "护肤"], store_id)
        with pytest.raises(InvalidContent) as refused:
            brands.save_brand({"store_id": 999, "logo_image_id": 5, "counter_code": "兰 蔻"}, staff_id=staff,
                              brand_id=brand_id)
        assert refused.value.errors["store_id"] == "no store 999"
        assert refused.value.errors["logo_image_id"] == "no image 5"
        assert "counter" in refused.value.errors["counter_code"]
        with pytest.raises(InvalidContent, match="another brand is called 兰蔻"):
            brands.save_brand({"name": "兰蔻"}, staff_id=staff)
        with pytest.raises(UnknownContent):
            brands.save_brand({"name": "x"}, staff_id=staff, brand_id=404)


def test_an_activity_keeps_its_brands_and_a_bad_edit_changes_nothing(app):
    staff = make_staff(app, "mkt")
    lancome, estee = _brand(app, staff), _brand(app, staff, "雅诗兰黛", "ESTEE")
    activity_id = _activity(app, staff, brand_ids=[estee, lancome, lancome])
    with uow(app) as session:
        assert activities.brand_ids(activity_id) == sorted([lancome, estee])
        created = entries(session, "content.activity")[0]
        assert created.after["brand_ids"] == sorted([lancome, estee]) and created.after["title"] == "冬日美妆节"
        activity = session.get(Activity, activity_id)
        assert activity.status == "draft" and activity.starts_at.tzinfo is not None
        with pytest.raises(InvalidContent) as refused:  # a good title with a bad end: neither is written
            activities.save_activity({"title": "改了", "ends_at": at(0.5)}, staff_id=staff, activity_id=activity_id)
        assert refused.value.errors == {"ends_at": "ends after it starts"}
        with pytest.raises(InvalidContent, match="needs its time zone"):
            activities.save_activity({"starts_at": "2026-12-04T10:00"}, staff_id=staff, activity_id=activity_id)
    with uow(app) as session:
        assert session.get(Activity, activity_id).title == "冬日美妆节"
        activities.save_activity({"brand_ids": [lancome]}, staff_id=staff, activity_id=activity_id)
    with uow(app) as session:
        assert session.scalars(select(ActivityBrand.brand_id)).all() == [lancome]
        updated = entries(session, "content.activity")[-1]
        assert (updated.action, updated.before, updated.after) == (
            "content.activity.update", {"brand_ids": sorted([lancome, estee])}, {"brand_ids": [lancome]})


def test_new_arrivals_and_discounts_are_checked(app):
    staff = make_staff(app, "mkt")
    brand_id = _brand(app, staff)
    with uow(app) as session:
        arrival = offers.save_new_arrival({"brand_id": brand_id, "product": "小黑瓶", "price_fen": 108000},
                                          staff_id=staff)
        assert arrival.price_fen == 108000 and arrival.status == "draft"
        with pytest.raises(InvalidContent) as refused:
            offers.save_new_arrival({"brand_id": brand_id, "product": "x", "price_fen": 10.5}, staff_id=staff)
        assert "whole number" in refused.value.errors["price_fen"]
        with pytest.raises(InvalidContent) as bad_dates:
            offers.save_discount({"title": "满减", "valid_from": "2026-12-10", "valid_until": "2026-12-01"},
                                 staff_id=staff)
        assert bad_dates.value.errors == {"valid_until": "is on or after valid_from"}
        store_wide = offers.save_discount({"title": "满减", "valid_from": "2026-12-01", "valid_until": "2026-12-10"},
                                          staff_id=staff)
        assert store_wide.brand_id is None
        assert [e.action for e in entries(session)][-2:] == ["content.new_arrival.create", "content.discount.create"]


# -- publishing --------------------------------------------------------------------------------------

def test_publish_now_then_unpublish_each_audited_and_a_repeat_refused(app):
    staff = make_staff(app, "mkt")
    activity_id = _activity(app, staff)
    with uow(app):
        item = publishing.publish_now("activity", activity_id, staff_id=staff)
        assert item.status == "published" and item.published_at is not None
    with uow(app):
        with pytest.raises(NotAllowed, match="published already"):
            publishing.publish_now("activity", activity_id, staff_id=staff)
        assert publishing.unpublish("activity", activity_id, staff_id=staff).status == "unpublished"
        with pytest.raises(NotAllowed):
            publishing.unpublish("activity", activity_id, staff_id=staff)
    with uow(app) as session:
        moves = [(e.action, e.before["status"], e.after["status"]) for e in entries(session, "content.activity.")
                 if e.action != "content.activity.create"]
        assert moves == [("content.activity.publish", "draft", "published"),
                         ("content.activity.unpublish", "published", "unpublished")]


def test_schedule_refuses_the_past_and_a_publish_time_on_a_published_item(app):
    staff = make_staff(app, "mkt")
    activity_id = _activity(app, staff)
    with uow(app):
        with pytest.raises(InvalidContent) as past:
            publishing.schedule("activity", activity_id, publish_at=at(-1), staff_id=staff)
        assert "future" in past.value.errors["publish_at"]
        with pytest.raises(InvalidContent) as order:
            publishing.schedule("activity", activity_id, publish_at=at(2), unpublish_at=at(1), staff_id=staff)
        assert "after the publish time" in order.value.errors["unpublish_at"]
        with pytest.raises(NotAllowed, match="give a publish time too"):
            publishing.schedule("activity", activity_id, unpublish_at=at(2), staff_id=staff)
        item = publishing.schedule("activity", activity_id, publish_at=at(1), unpublish_at=at(5), staff_id=staff)
        assert item.status == "scheduled" and item.publish_at > utcnow()
    with uow(app) as session:
        publishing.publish_now("activity", activity_id, staff_id=staff)  # before its time: fine, at once
        with pytest.raises(NotAllowed, match="set only an unpublish time"):
            publishing.schedule("activity", activity_id, publish_at=at(2), staff_id=staff)
        assert publishing.schedule("activity", activity_id, unpublish_at=at(4), staff_id=staff).status == "published"
        last = entries(session)[-1]
        assert last.action == "content.activity.schedule" and list(last.after) == ["unpublish_at"]


def _run_in_app(app, path: str) -> None:
    with app.app_context():
        run_job(path, {})


def _scheduler_job(name: str) -> str:
    return next(path for job_name, _cron, path in SWEEP_JOBS if job_name == name)


def _scheduled(app, staff, *, publish_in_hours: float, unpublish_in_hours: float | None = None) -> int:
    """An activity scheduled an hour ago for `publish_in_hours` from now (may be in the past)."""
    activity_id = _activity(app, staff)
    with uow(app):
        earlier = utcnow() + timedelta(hours=min(publish_in_hours, 0) - 1)
        publishing.schedule("activity", activity_id, publish_at=at(hours=publish_in_hours),
                            unpublish_at=at(hours=unpublish_in_hours) if unpublish_in_hours is not None else None,
                            staff_id=staff, now=earlier)
    return activity_id


def test_the_scheduler_job_publishes_what_is_due_once_and_takes_down_what_expired(app):
    staff = make_staff(app, "mkt")
    due = _scheduled(app, staff, publish_in_hours=-0.5, unpublish_in_hours=48)
    later = _scheduled(app, staff, publish_in_hours=2)
    gone_before_live = _scheduled(app, staff, publish_in_hours=-0.5, unpublish_in_hours=-0.1)
    expired = _activity(app, staff)
    with uow(app):
        publishing.publish_now("activity", expired, staff_id=staff)
        publishing.schedule("activity", expired, unpublish_at=at(hours=-0.2), staff_id=staff,
                            now=utcnow() - timedelta(hours=1))
    path = _scheduler_job("content-publish")
    with app.app_context():  # as a worker runs what the scheduler enqueued: run_job(path, {})
        assert run_job(path, {}) == {"published": 1, "unpublished": 2}
        assert run_job(path, {}) == {"published": 0, "unpublished": 0}
    with uow(app) as session:
        status = {ident: session.get(Activity, ident).status for ident in (due, later, gone_before_live, expired)}
        assert status == {due: "published", later: "scheduled", gone_before_live: "unpublished", expired: "unpublished"}
        by_scheduler = [(e.action, e.subject) for e in entries(session) if e.detail == "scheduler"]
        assert sorted(by_scheduler) == sorted([("content.activity.publish", f"activity:{due}"),
                                               ("content.activity.unpublish", f"activity:{gone_before_live}"),
                                               ("content.activity.unpublish", f"activity:{expired}")])
        assert all(e.staff_id is None for e in entries(session) if e.detail == "scheduler")


def test_mark_published_on_a_stale_read_does_nothing(app):
    staff = make_staff(app, "mkt")
    activity_id = _scheduled(app, staff, publish_in_hours=-0.5)
    with uow(app) as session:
        stale = session.get(Activity, activity_id)
        assert stale.status == "scheduled"
        # Another worker publishes it meanwhile (its own thread, session and transaction, committed).
        other = threading.Thread(target=lambda: _run_in_app(app, _scheduler_job("content-publish")))
        other.start()
        other.join(30)
        assert stale.status == "scheduled"  # as this transaction read it
        assert publishing.mark_published(stale, utcnow()) is False
    with uow(app) as session:
        assert len([e for e in entries(session) if e.action == "content.activity.publish"]) == 1


@requires_redis
def test_the_cron_scheduler_enqueues_the_sweep_and_a_worker_publishes(app, wx, run_jobs, restore_tz):
    from wx_service.edges.schedule import build_scheduler

    staff = make_staff(app, "mkt")
    activity_id = _scheduled(app, staff, publish_in_hours=-0.5)
    scheduler = build_scheduler(wx.redis)
    for job in scheduler.get_jobs():
        job.next_enqueue_time = utcnow() if job.name == "content-publish" else job.next_enqueue_time
    assert [job.name for job in scheduler.enqueue_jobs()] == ["content-publish"]
    run_jobs()
    with uow(app) as session:
        assert session.get(Activity, activity_id).status == "published"


@requires_postgres
def test_two_scheduler_runs_at_once_publish_each_item_once(app):
    staff = make_staff(app, "mkt")
    ids = [_scheduled(app, staff, publish_in_hours=-0.5) for _ in range(5)]
    path = _scheduler_job("content-publish")
    results: list[dict] = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            start.wait()
            results.append(run_job(path, {}))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(result["published"] for result in results) == 5
    with uow(app) as session:
        assert {session.get(Activity, ident).status for ident in ids} == {"published"}
        assert len([e for e in entries(session) if e.action == "content.activity.publish"]) == 5


# -- images ----------------------------------------------------------------------------------------

def test_images_are_judged_by_their_bytes_kept_once_and_sent_to_wechat_after_commit(app, emulator, run_jobs):
    staff = make_staff(app, "mkt")
    picture = png()
    with uow(app) as session:
        first, created = images.add_image(picture, "cover.gif", staff_id=staff)
        assert created and first.content_type == "image/png"
        jpeg, _ = images.add_image(JPEG, "photo.png", staff_id=staff)
        assert jpeg.content_type == "image/jpeg"
        with pytest.raises(InvalidContent, match="not a PNG or JPEG"):
            images.add_image(b"GIF89a" + bytes(40), "fake.png", staff_id=staff)
        with pytest.raises(InvalidContent, match="not a PNG or JPEG"):
            images.add_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.jpg", staff_id=staff)
        with pytest.raises(InvalidContent, match="at most 10 MB"):
            images.add_image(picture + bytes(images.MAX_BYTES), "huge.png", staff_id=staff)
        image_id = first.id
    with uow(app):
        again, created_again = images.add_image(picture, "same-bytes.png", staff_id=staff)
        assert (again.id, created_again) == (image_id, False)
    run_jobs()
    with uow(app) as session:
        kept = session.get(ContentImage, image_id)
        assert kept.wechat_media_id and kept.wechat_url.endswith(kept.wechat_media_id)
        assert emulator.find_media(kept.wechat_media_id, live=False).data == picture
        assert emulator.find_media(kept.wechat_media_id) is None  # permanent material, not temporary
        assert session.scalar(select(func.count()).select_from(ContentImage)) == 2
        assert [e.action for e in entries(session)] == ["content.image.create", "content.image.create"]
    with app.app_context():  # a repeated job uploads nothing again
        assert run_job("marketing.content_jobs.upload_image", {"image_id": image_id}) == kept.wechat_media_id
    assert emulator.calls["material/add_material"] == 2


def test_an_image_whose_upload_job_was_lost_is_sent_again_by_the_sweep(app, emulator, run_jobs):
    with uow(app) as session:  # as if its job had been lost: a row, and nothing queued
        lost = ContentImage(sha256="a" * 64, content_type="image/png", size=len(png()), data=png(),
                            created_at=utcnow() - timedelta(minutes=30))
        fresh = ContentImage(sha256="b" * 64, content_type="image/png", size=len(png()), data=png())
        session.add_all([lost, fresh])
        session.flush()
        lost_id, fresh_id = lost.id, fresh.id
    with app.app_context():
        assert run_job(_scheduler_job("content-images"), {}) == 1  # the fresh one's own job may still run
    run_jobs()
    with uow(app) as session:
        assert session.get(ContentImage, lost_id).wechat_media_id
        assert session.get(ContentImage, fresh_id).wechat_media_id == ""
    with app.app_context():
        assert run_job(_scheduler_job("content-images"), {}) == 0


def test_the_demo_content_loads_once_with_the_demo_counter(app):
    from wx_service.edges.demo_content import load_demo_content
    from wx_service.edges.demo_data import load_demo_data

    with uow(app):
        load_demo_data()
    with uow(app) as session:
        assert load_demo_content() == "content already loaded"
        assert session.scalar(select(func.count()).select_from(Store)) == 2
        assert "LANCOME" in session.scalars(select(Brand.counter_code)).all()
        activity = session.scalars(select(Activity)).one()
        assert activity.status == "published" and len(activities.brand_ids(activity.id)) == 2
        assert session.scalar(select(func.count()).select_from(StoreHoursException)) == 1
        from marketing.models import Article, Discount, NewArrival, StoreInfo
        assert session.scalar(select(func.count()).select_from(NewArrival).where(NewArrival.status == "published")) == 3
        assert session.scalar(select(func.count()).select_from(Discount)) == 1
        assert session.scalar(select(func.count()).select_from(StoreInfo)) == 1
        assert session.scalar(select(func.count()).select_from(Article)) > 0
