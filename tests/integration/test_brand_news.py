"""Brand news end to end through the emulator (issue 12): an announced new arrival or activity
reaches each subscriber once, as an OA template message in their chat or as a subscribe message
where a one-time consent remains (spending exactly one); the weekly cap, the quiet hours and the
dedup hold; the skipped are counted by reason, and the console page shows the progress."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from marketing import announcements, subscriptions
from marketing import news_jobs as jobs
from marketing.models import AnnouncementChunk, BrandNewsDelivery
from members import consents
from members.identity import MP, OA, resolve_member
from tests.conftest import requires_postgres
from tests.integration.brand_news_helpers import (
    activity,
    announce,
    announcement,
    arrival,
    brand,
    brand_news,
    deliveries,
    follower,
    progress,
    subscribe,
)
from tests.integration.reservation_helpers import uow
from wx_service.edges.emulator.shopper import ShopperClient
from wx_service.ground.db import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEWS_TEMPLATE = "DEMO_brand_news_subscribe"


def test_a_new_arrival_reaches_each_subscriber_once_as_a_template_in_their_chat(app, emulator, run_jobs):
    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    mei, qiang, lily = (follower(app, emulator, n) for n in range(3))
    subscribe(app, mei, lancome)
    subscribe(app, qiang, lancome, "oa_keyword")
    subscribe(app, lily, dior)
    item = arrival(app, lancome, "菁纯臻颜精华", 1280_00)
    made = announce(app, "new_arrival", item, run_jobs)
    assert announce(app, "new_arrival", item, run_jobs) is None  # announcing twice is a no-op
    for who in (mei, qiang):
        [line] = brand_news(emulator, who)
        assert line["via"] == "template"
        assert [line["data"][k]["value"] for k in ("keyword1", "keyword2", "keyword4")] == [
            "兰蔻", "菁纯臻颜精华", "¥1280.00 到店试用"]
    assert brand_news(emulator, lily) == []
    shown = progress(app, made)
    assert (shown["state"], shown["chunks_done"], shown["chunks_total"], shown["subscribers"]) == ("done", 1, 1, 2)
    assert shown["counts"]["sent"] == 2 and sum(shown["counts"].values()) == 2


def test_an_activity_of_two_brands_reaches_a_shopper_of_both_once(app, emulator, run_jobs):
    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    mei = follower(app, emulator, 0)
    subscribe(app, mei, lancome)
    subscribe(app, mei, dior)
    made = announce(app, "activity", activity(app, [lancome, dior], "春季美妆节"), run_jobs)
    [line] = brand_news(emulator, mei)
    assert line["data"]["keyword2"]["value"] == "春季美妆节" and line["data"]["keyword1"]["value"] == "兰蔻"
    assert progress(app, made)["counts"]["sent"] == 1


def test_a_remaining_consent_carries_a_subscribe_message_spending_exactly_one(app, emulator, run_jobs):
    lancome = brand(app)
    emu = list(emulator.shoppers.values())[0]
    follower(app, emulator, 0)
    with app.app_context():
        ShopperClient(emulator).request_subscribe_message(emu.mp_openid, {NEWS_TEMPLATE: "accept"})
    with uow(app):
        resolve_member(MP, emu.mp_openid, emu.unionid)  # a member known by both openids
        resolve_member(OA, emu.openid, emu.unionid)
        consents.record_grants(emu.mp_openid, [NEWS_TEMPLATE])
        subscriptions.subscribe(emu.mp_openid, lancome, "mp")
    announce(app, "new_arrival", arrival(app, lancome, "小黑瓶"), run_jobs)
    [line] = brand_news(emulator, emu.openid)
    assert line["via"] == "subscribe"
    assert line["data"] == {"thing1": "兰蔻", "thing2": "小黑瓶", "time3": line["data"]["time3"], "thing4": "¥1280.00 到店试用"}
    with uow(app):
        assert consents.remaining(emu.mp_openid, NEWS_TEMPLATE) == 0
    assert emu.subscribe_consents[NEWS_TEMPLATE] == 0
    # No consent left: the OA template reaches the member at their OA openid.
    made = announce(app, "new_arrival", arrival(app, lancome, "粉水"), run_jobs)
    assert [m["via"] for m in brand_news(emulator, emu.openid)] == ["subscribe", "template"]
    assert progress(app, made)["counts"]["sent"] == 1


def test_the_weekly_cap_skips_and_counts_the_third_news_across_brands(app, emulator, run_jobs):
    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    mei, qiang = follower(app, emulator, 0), follower(app, emulator, 1)
    subscribe(app, mei, lancome)
    subscribe(app, mei, dior)
    subscribe(app, qiang, dior)
    announce(app, "new_arrival", arrival(app, lancome, "一号"), run_jobs)
    announce(app, "new_arrival", arrival(app, dior, "二号"), run_jobs)
    made = announce(app, "new_arrival", arrival(app, dior, "三号"), run_jobs)
    assert [line["data"]["keyword2"]["value"] for line in brand_news(emulator, mei)] == ["一号", "二号"]
    assert [line["data"]["keyword2"]["value"] for line in brand_news(emulator, qiang)] == ["二号", "三号"]
    counts = progress(app, made)["counts"]
    assert (counts["sent"], counts["skipped:capped"]) == (1, 1)
    # A week on, the first two have aged out of the rolling window.
    with uow(app) as session:
        session.execute(update(BrandNewsDelivery).values(created_at=utcnow() - timedelta(days=7, minutes=1)))
    announce(app, "new_arrival", arrival(app, lancome, "四号"), run_jobs)
    assert [line["data"]["keyword2"]["value"] for line in brand_news(emulator, mei)] == ["一号", "二号", "四号"]


def test_the_skipped_are_counted_by_reason_not_failed(app, emulator, run_jobs):
    lancome = brand(app)
    mei, qiang, lily = follower(app, emulator, 0), follower(app, emulator, 1), follower(app, emulator, 2, follows=False)
    before = utcnow() - timedelta(hours=1)
    for who in (mei, qiang, lily, "oMpStrangerWithoutMember"):
        subscribe(app, who, lancome, at=before)
    t0 = utcnow()
    with uow(app):  # qiang unsubscribes after the announcement, before his chunk runs
        subscriptions.unsubscribe(qiang, lancome, "h5", now=t0 + timedelta(seconds=30))
    made = announce(app, "new_arrival", arrival(app, lancome), run_jobs, now=t0)
    assert deliveries(app) == {mei: "sent", qiang: "skipped:unsubscribed", lily: "skipped:unfollowed",
                               "oMpStrangerWithoutMember": "skipped:no_channel"}
    counts = progress(app, made)["counts"]
    assert (counts["sent"], counts["failed"]) == (1, 0)
    assert [len(brand_news(emulator, who)) for who in (mei, qiang, lily)] == [1, 0, 0]


def test_a_rerun_chunk_never_sends_twice_and_a_stalled_template_goes_once(app, emulator, run_jobs):
    lancome = brand(app)
    mei, qiang = follower(app, emulator, 0), follower(app, emulator, 1)
    subscribe(app, mei, lancome)
    subscribe(app, qiang, lancome)
    made = announce(app, "new_arrival", arrival(app, lancome), run_jobs)
    assert [len(brand_news(emulator, who)) for who in (mei, qiang)] == [1, 1]
    # A worker died after WeChat showed mei's message and before recording it: she is `sending`,
    # and the chunk's lease lapses.
    with uow(app) as session:
        session.execute(update(BrandNewsDelivery).where(BrandNewsDelivery.openid == mei).values(status="sending",
                                                                                                 sent_at=None))
        session.execute(update(AnnouncementChunk).values(status="running", claimed_at=utcnow() - timedelta(minutes=5)))
    with uow(app):
        assert jobs.resume_stalled()["requeued"] == 1
    run_jobs()
    with uow(app):
        assert jobs.resume_stalled()["requeued"] == 0
    assert [len(brand_news(emulator, who)) for who in (mei, qiang)] == [1, 1]  # the resend was dropped by client_msg_id
    assert emulator.calls["message/template/send"] == 3
    assert deliveries(app) == {mei: "sent", qiang: "sent"}
    assert progress(app, made)["counts"]["sent"] == 2


def test_a_chunk_due_in_the_quiet_hours_waits_for_their_end(app, emulator, run_jobs, monkeypatch):
    lancome = brand(app)
    mei = follower(app, emulator, 0)
    subscribe(app, mei, lancome)
    queued: list[tuple[str, dict]] = []
    monkeypatch.setattr(announcements, "enqueue_after_commit", lambda path, **kw: queued.append((path, kw)))
    monkeypatch.setattr(jobs, "enqueue_after_commit", lambda path, **kw: queued.append((path, kw)))
    real = announcements.quiet_until
    monkeypatch.setattr(announcements, "quiet_until", lambda now, spec=None: real(now, "21:00-09:00"))
    made = announce(app, "new_arrival", arrival(app, lancome))
    [(path, kwargs)] = queued
    late = utcnow().astimezone(SHANGHAI).replace(hour=22, minute=30, second=0, microsecond=0)
    with uow(app):
        assert jobs.send_chunk(kwargs["chunk_id"], now=late.isoformat()) == "waiting"
    [_, (_, again)] = queued
    assert again["delay"] == pytest.approx(10.5 * 3600)
    morning = late.replace(hour=9, minute=0) + timedelta(days=1)
    with uow(app) as session:
        assert session.scalar(select(AnnouncementChunk.resume_at)) == morning.astimezone(ZoneInfo("UTC"))
    assert brand_news(emulator, mei) == [] and announcement(app, made).started_at is None
    with uow(app):
        assert jobs.send_chunk(kwargs["chunk_id"], now=morning.isoformat()) == "done"
    assert len(brand_news(emulator, mei)) == 1


@pytest.mark.parametrize("spec, at, until", [
    ("21:00-09:00", "2026-12-03 22:30", "2026-12-04 09:00"),
    ("21:00-09:00", "2026-12-04 03:00", "2026-12-04 09:00"),
    ("21:00-09:00", "2026-12-04 09:00", None),
    ("21:00-09:00", "2026-12-04 20:59", None),
    ("12:00-14:00", "2026-12-04 13:00", "2026-12-04 14:00"),
    ("12:00-14:00", "2026-12-04 14:00", None),
    ("off", "2026-12-04 03:00", None),
])
def test_quiet_hours_are_store_time_and_may_wrap_midnight(spec, at, until):
    now = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(ZoneInfo("UTC"))
    found = announcements.quiet_until(now, spec)
    assert (found.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if found else None) == until


def test_staff_publishing_a_new_arrival_sends_it_to_the_brands_subscribers_once(app, emulator, run_jobs):
    """The content console's publish (marketing.publishing) is what announces: no separate step."""
    from marketing import publishing
    from marketing.models import NewArrival

    lancome = brand(app)
    mei, qiang = follower(app, emulator, 0), follower(app, emulator, 1)
    subscribe(app, mei, lancome)
    with uow(app) as session:
        draft = NewArrival(brand_id=lancome, product="小黑瓶精华 100ml", price_fen=1580_00, status="draft")
        session.add(draft)
        session.flush()
        item = draft.id
    assert brand_news(emulator, mei) == []  # a draft tells nobody
    with uow(app):
        publishing.publish_now("new_arrival", item, staff_id=None)
    run_jobs()
    [line] = brand_news(emulator, mei)
    assert line["data"]["keyword2"]["value"] == "小黑瓶精华 100ml"
    assert brand_news(emulator, qiang) == []  # not a subscriber
    with uow(app):  # taken down and published again: announced once per item
        publishing.unpublish("new_arrival", item, staff_id=None)
    with uow(app):
        publishing.publish_now("new_arrival", item, staff_id=None)
    run_jobs()
    assert len(brand_news(emulator, mei)) == 1


@requires_postgres
def test_two_announcements_deciding_at_the_same_moment_keep_the_weekly_cap(app, emulator, run_jobs, monkeypatch):
    """Mei has had one brand news this week (cap 2). Two more go out at once, on two workers: the
    second to decide waits for the first's verdicts and finds her at the cap, so she gets exactly
    one more, not two."""
    import threading

    from wx_service.ground.queue import run_job

    lancome, dior = brand(app), brand(app, "迪奥", "Dior", "DIOR")
    mei = follower(app, emulator, 0)
    subscribe(app, mei, lancome)
    subscribe(app, mei, dior)
    announce(app, "new_arrival", arrival(app, lancome, "一号"), run_jobs)
    first, second = (announce(app, "new_arrival", arrival(app, b, name)) for b, name in ((lancome, "二号"), (dior, "三号")))
    with uow(app) as session:
        chunk_of = dict(session.execute(select(AnnouncementChunk.announcement_id, AnnouncementChunk.id).where(
            AnnouncementChunk.announcement_id.in_((first, second)))).all())

    decided, go_on = threading.Event(), threading.Event()
    original = jobs._decide

    def decide_then_wait(chunk, announcement, keys, now):
        sends = original(chunk, announcement, keys, now)
        if announcement.id == first:  # hold the first decision open (uncommitted) a moment
            decided.set()
            go_on.wait(10)
        return sends

    monkeypatch.setattr(jobs, "_decide", decide_then_wait)
    errors: list[BaseException] = []

    def work(announcement_id: int) -> None:
        try:
            with app.app_context():  # a worker of its own, as two RQ workers would be
                run_job("marketing.news_jobs.send_chunk", {"chunk_id": chunk_of[announcement_id]})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    one = threading.Thread(target=work, args=(first,))
    one.start()
    assert decided.wait(10), errors
    two = threading.Thread(target=work, args=(second,))
    two.start()
    two.join(1.5)  # without the lock, the second decides (and sends) here, beside the open first
    go_on.set()
    one.join(20)
    two.join(20)
    run_jobs()
    assert errors == []
    assert sorted(line["data"]["keyword2"]["value"] for line in brand_news(emulator, mei)) == ["一号", "二号"]
    counts = progress(app, second)["counts"]
    assert (counts["sent"], counts["skipped:capped"]) == (0, 1)
