"""What a shopper hears about a reservation, and through which channel: a mini-program subscribe
message while a one-time consent remains (one spent per message), else the OA template; neither,
the notice is skipped. Against the emulated WeChat, with the jobs run as the queue runs them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from members import consents
from members.models import SubscribeGrant
from reservations import bookings, holds, jobs, slots
from reservations.models import Booking, Notice, Service
from reservations.states import CANCELLED, CONFIRMED, NO_SHOW
from tests.conftest import requires_redis
from tests.integration.notice_helpers import (grant_consents, ledger_remaining, notice_rows, notices_in_chat,
                                              shopper, subscribe_template, wechat_remaining)
from tests.integration.reservation_helpers import on_grid, uow, variant
from tests.integration.reservation_helpers import service as make_service
from wx_service.edges.emulator.shopper import ShopperClient
from wx_service.ground.db import utcnow


def store(at) -> str:
    return at.astimezone(slots.STORE_ZONE).strftime("%Y-%m-%d %H:%M")


def visit_code(app, booking_id: int) -> str:
    with uow(app) as session:
        return session.get(Booking, booking_id).visit_code


@pytest.fixture
def booked(app, emulator, run_jobs):
    """book(who, hours_ahead=26) -> (booking id, start): a booking from the mini-program, its
    notices sent."""
    service, resource = make_service(app, capacity=2)

    def book(who, hours_ahead: float = 26, key: str = "k-1"):
        at = on_grid(app, service, hours_ahead=hours_ahead)
        with uow(app):
            made = bookings.book(service, at, who.mp, key, resource_id=resource).id
        run_jobs()
        return made, at
    book.service = service
    book.resource = resource
    return book


def test_a_confirmation_is_a_subscribe_message_while_a_consent_remains_one_spent_per_message(
        app, emulator, booked, run_jobs):
    who = shopper(app, emulator)
    grant_consents(app, emulator, who, 2)
    booking, at = booked(who)
    [line] = notices_in_chat(emulator, who)
    assert line["via"] == "subscribe" and line["template_id"] == subscribe_template(app)
    code = visit_code(app, booking)
    assert line["data"] == {"thing1": "肌肤测试", "time2": store(at), "thing3": "LANCOME 1号美容台",
                            "thing4": f"到店出示预约码{code}", "phrase5": "预约成功"}
    assert (ledger_remaining(app, who.mp), wechat_remaining(app, emulator, who)) == (1, 1)
    with uow(app):
        bookings.cancel(booking, "临时有事", openid=who.mp)
    run_jobs()
    assert [line["data"]["phrase5"] for line in notices_in_chat(emulator, who)] == ["预约成功", "预约已取消"]
    assert notices_in_chat(emulator, who)[-1]["data"]["thing4"] == "临时有事"
    assert (ledger_remaining(app, who.mp), wechat_remaining(app, emulator, who)) == (0, 0)
    # No consent left: the next message is the OA template, to the shopper's OA openid.
    again, at2 = booked(who, hours_ahead=50, key="k-2")
    line = notices_in_chat(emulator, who)[-1]
    assert line["via"] == "template" and line["client_msg_id"].startswith("rsv-")
    assert line["content"].splitlines() == ["肌肤测试", store(at2), "LANCOME 1号美容台", "预约成功",
                                            f"到店出示预约码{visit_code(app, again)}"]
    assert [(n.channel, n.status) for n in notice_rows(app)] == [
        ("subscribe", "sent"), ("subscribe", "sent"), ("template", "sent")]


def test_a_shopper_no_channel_reaches_is_skipped_not_failed(app, emulator, booked):
    who = shopper(app, emulator, member=False)  # never logged in as a member, no consent, no follower
    booked(who)
    assert notices_in_chat(emulator, who) == []
    [notice] = notice_rows(app)
    assert notice.status == "skipped" and "no consent" in notice.detail


def test_43101_falls_back_to_the_oa_template_and_retires_the_consents_wechat_never_had(
        app, emulator, booked):
    who = shopper(app, emulator)
    grant_consents(app, emulator, who, 0)
    with uow(app):
        consents.record_grants(who.mp, [subscribe_template(app)] * 2)  # reported, but WeChat holds none
    booked(who)
    [line] = notices_in_chat(emulator, who)
    assert line["via"] == "template" and line["data"]["keyword4"]["value"] == "预约成功"
    assert emulator.calls["message/subscribe/send"] == 1  # tried once, not once per phantom consent
    assert ledger_remaining(app, who.mp) == 0
    [notice] = notice_rows(app)
    assert (notice.channel, notice.status, notice.wechat_errcode) == ("template", "sent", 43101)


def test_a_refused_subscribe_send_gives_the_consent_back_and_the_template_carries_it(app, emulator, booked):
    who = shopper(app, emulator)
    grant_consents(app, emulator, who, 1)
    emulator.faults.append(__import__("wx_service.edges.emulator.state", fromlist=["Fault"]).Fault(
        api="message/subscribe/send", errcode=47003, errmsg="argument invalid!"))
    booked(who)
    [line] = notices_in_chat(emulator, who)
    assert line["via"] == "template"
    # WeChat refused it, so the consent was not used: both ledgers still hold it.
    assert (ledger_remaining(app, who.mp), wechat_remaining(app, emulator, who)) == (1, 1)


def test_a_name_too_long_for_a_thing_is_cut_to_twenty_characters_not_refused(app, emulator, booked):
    who = shopper(app, emulator)
    grant_consents(app, emulator, who, 1)
    long_name = "高级定制晚礼服量体裁衣与修改咨询服务（含两次试穿）"
    with uow(app) as session:
        session.get(Service, booked.service).name = long_name
    booked(who)
    [line] = notices_in_chat(emulator, who)
    assert line["via"] == "subscribe"
    assert line["data"]["thing1"] == long_name[:19] + "…" and len(line["data"]["thing1"]) == 20
    assert [n.status for n in notice_rows(app)] == ["sent"]


def test_every_kind_reaches_the_shopper_with_its_title(app, emulator, booked, run_jobs):
    """Template channel (no consents): confirmation, change, cancellation, the waitlist offer,
    holds placed / confirmed / cancelled by the counter, a reminder, and "awaiting the counter"."""
    who, other = shopper(app, emulator, 0), shopper(app, emulator, 1)
    booking, at = booked(who)
    later = on_grid(app, booked.service, hours_ahead=74)
    with uow(app):
        moved = bookings.reschedule(booking, later, "k-move", openid=who.mp).id
    with uow(app):
        jobs.queue_reminders(now=later - timedelta(hours=24) + timedelta(minutes=1))
    run_jobs()  # sent before the cancellation below (a reminder still queued then is skipped)
    # The slot fills; the other shopper waits; a cancellation offers them the unit.
    with uow(app):
        bookings.book(booked.service, later, "oFiller", "k-fill", resource_id=booked.resource)
        bookings.join_waitlist(booked.service, later, other.mp)
        bookings.cancel(moved, "改天再来", openid=who.mp)
    run_jobs()
    item = variant(app, holdable=3)
    day = slots.store_day(utcnow()) + timedelta(days=2)
    with uow(app):
        hold = holds.hold(item, who.mp, "h-1", day).id
    with uow(app):
        holds.move(hold, CONFIRMED)
    with uow(app):
        holds.move(hold, CANCELLED)  # by the counter: the shopper is told
    run_jobs()
    titles = [line["data"]["keyword4"]["value"] for line in notices_in_chat(emulator, who)]
    assert titles == ["预约成功", "预约已改期", "预约提醒", "预约已取消", "商品已保留", "保留已确认", "保留已取消"]
    reminder = notices_in_chat(emulator, who)[2]["data"]
    assert reminder["keyword2"]["value"] == store(later)
    assert reminder["keyword5"]["value"] == f"请准时到店 预约码{visit_code(app, moved)}"
    [offer] = notices_in_chat(emulator, other)
    assert offer["data"]["keyword4"]["value"] == "候补有名额" and offer["data"]["keyword2"]["value"] == store(later)
    # A shopper with two recent no-shows books into "awaiting the counter".
    third = shopper(app, emulator, 2)
    with uow(app) as session:
        for n in range(2):
            session.add(Booking(service_id=booked.service, resource_id=booked.resource, openid=third.mp,
                                starts_at=utcnow() - timedelta(days=n + 1), ends_at=utcnow() - timedelta(days=n + 1),
                                idempotency_key=f"old-{n}", status=NO_SHOW))
    booked(third, hours_ahead=30, key="k-3")
    [requested] = notices_in_chat(emulator, third)
    assert requested["data"]["keyword4"]["value"] == "待门店确认"
    assert {n.status for n in notice_rows(app) if n.openid != "oFiller"} == {"sent"}


def test_a_reminder_of_a_booking_cancelled_before_it_went_is_skipped(app, emulator, booked, run_jobs):
    who = shopper(app, emulator)
    booking, at = booked(who)
    with uow(app):
        jobs.queue_reminders(now=at - timedelta(hours=24) + timedelta(minutes=1))
        bookings.cancel(booking, "不去了", openid=who.mp)
    run_jobs()
    titles = [line["data"]["keyword4"]["value"] for line in notices_in_chat(emulator, who)]
    assert titles == ["预约成功", "预约已取消"]
    assert {n.kind: n.status for n in notice_rows(app)}["reminder_1440"] == "skipped"


def test_a_notice_whose_job_was_lost_before_the_claim_is_sent_by_the_sweep(app, emulator, booked, run_jobs):
    who = shopper(app, emulator)
    booking, _ = booked(who)
    with uow(app) as session:  # as if the worker died holding the job: the notice never left pending
        session.add(Notice(subject=f"booking:{booking}", kind="changed", openid=who.mp, status="pending",
                           created_at=utcnow() - timedelta(minutes=5)))
    with uow(app):
        assert jobs.resume_stalled_notices()["requeued"] == 1
    run_jobs()
    assert [line["data"]["keyword4"]["value"] for line in notices_in_chat(emulator, who)] == ["预约成功", "预约已改期"]
    with uow(app):
        assert jobs.resume_stalled_notices(now=utcnow() + timedelta(minutes=5)) == {
            "requeued": 0, "unknown": 0, "given_up": 0}


# -- consents WeChat pushes: subscribe_msg_popup_event ---------------------------------------------

def _grants(app, openid: str) -> list[tuple[str, str]]:
    with uow(app) as session:
        return [(g.template_id, g.source) for g in session.scalars(
            select(SubscribeGrant).where(SubscribeGrant.openid == openid).order_by(SubscribeGrant.id))]


def _popup(app, emulator, base_url, who, decisions):
    emulator.push_url = f"{base_url}/wechat"
    with app.app_context():
        return ShopperClient(emulator).subscribe_popup(who.oa, decisions)


def test_the_oa_popup_push_records_one_grant_per_accept_once_whatever_the_retries(app, emulator, base_url, wx,
                                                                                 run_jobs):
    who = shopper(app, emulator, member=False)
    template = subscribe_template(app)
    inserts: list[str] = []

    def count(conn, cursor, statement, *args):
        if "subscribe_grants" in statement and statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)
    event.listen(wx.db.engine, "before_cursor_execute", count)
    try:
        outcome = _popup(app, emulator, base_url, who, {template: "accept"})
    finally:
        event.remove(wx.db.engine, "before_cursor_execute", count)
    assert outcome["delivered"] and outcome["reply"] == "(no reply)"
    assert len(inserts) == 1  # the one domain statement the push adds
    assert _grants(app, who.oa) == [(template, "popup_event")]
    # WeChat's retry of the same push (same bytes) is answered from its record: no second grant.
    push = emulator.pushes[-1]
    import requests
    again = requests.post(f"{base_url}/wechat", params=push["query"], data=push["body"].encode(), timeout=5)
    assert again.status_code == 200
    assert _grants(app, who.oa) == [(template, "popup_event")]
    # A reject records nothing; the shopper's grant now carries a message to them.
    _popup(app, emulator, base_url, who, {template: "reject"})
    assert len(_grants(app, who.oa)) == 1
    assert wechat_remaining(app, emulator, who) == 1


@requires_redis
def test_a_popup_push_costs_one_redis_command(app, emulator, base_url, wx):
    who = shopper(app, emulator, member=False)
    template = subscribe_template(app)

    def calls() -> dict[str, int]:
        stats = wx.redis.info("commandstats")
        return {name: int(stat["calls"]) for name, stat in stats.items() if name != "cmdstat_info"}

    _popup(app, emulator, base_url, who, {template: "accept"})  # warm: script loaded
    before = calls()
    for _ in range(3):
        emulator.clock_offset += 1  # a new CreateTime: a new push, not a retry
        _popup(app, emulator, base_url, who, {template: "accept"})
    after = calls()
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    for setup in ("cmdstat_hello", "cmdstat_select", "cmdstat_client|setinfo"):
        assert spent.pop(setup, 0) <= 3
    assert spent == {"cmdstat_evalsha": 3, "cmdstat_set": 6, "cmdstat_exists": 3}
    assert len(_grants(app, who.oa)) == 4
