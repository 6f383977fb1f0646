"""Birthday and anniversary benefits, the greeting as an OA template message (through the
emulator), and the other daily member jobs: expiry, levels, card catch-up."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import requests
from sqlalchemy import select

from members import benefit_jobs, benefits, points
from members.ledger import SHANGHAI
from members.models import Coupon, Member, MemberCard, PointsEntry, SpendRecord
from tests.conftest import requires_postgres
from tests.integration.members_helpers import make_member, uow
from wx_service.ground.db import utcnow

JOBS = "members.benefit_jobs"


def subscribed_shopper(emulator, nickname: str = "小美") -> str:
    openid = f"oBen{len(emulator.shoppers):02d}" + "x" * 20
    emulator.add_shopper(openid, nickname).subscribed = True
    return openid


def template_messages(emulator, openid: str) -> list[dict]:
    return [line for line in emulator.shoppers[openid].chat if line.get("via") == "template"]


def run_daily(app, run_jobs, day: date) -> list[benefits.Grant]:
    with uow(app):
        grants = benefits.grant_birthday_and_anniversary(day)
    run_jobs()
    return grants


def member_coupons(app, member_id: int) -> list[Coupon]:
    with uow(app) as session:
        return list(session.scalars(select(Coupon).where(Coupon.member_id == member_id).order_by(Coupon.id)))


def test_a_birthday_gives_one_coupon_a_year_and_one_greeting(app, emulator, run_jobs):
    today = benefits.store_today()
    openid = subscribed_shopper(emulator)
    member = make_member(app, level="gold", name="王小美", birthday=date(1992, today.month, min(today.day, 28)),
                         oa_openid=openid)
    day = date(today.year, today.month, min(today.day, 28))
    grants = run_daily(app, run_jobs, day)
    assert [(g.member_id, g.kind, g.new, g.greeted) for g in grants] == [(member, "birthday", True, True)]
    [coupon] = member_coupons(app, member)
    assert (coupon.kind, coupon.value_fen, coupon.source_key) == ("birthday", 10_000, f"birthday:{member}:{day.year}")
    [message] = template_messages(emulator, openid)
    assert message["template_id"] == "TM_DEMO_BENEFIT_0001"
    assert message["client_msg_id"] == coupon.source_key
    assert "王小美，生日快乐！送您一张100元生日礼券" in message["content"]
    # the job runs again (a retry, a second scheduler): nothing new, no second message
    again = run_daily(app, run_jobs, day)
    assert [(g.new, g.greeted) for g in again] == [(False, False)]
    assert len(member_coupons(app, member)) == 1
    assert len(template_messages(emulator, openid)) == 1
    assert not getattr(app.extensions["wx"].queue, "failed", [])


def test_a_member_without_an_oa_openid_gets_the_coupon_but_no_message(app, emulator, run_jobs):
    member = make_member(app, birthday=date(1990, 5, 20))
    grants = run_daily(app, run_jobs, date(2026, 5, 20))
    assert [(g.kind, g.new, g.greeted) for g in grants] == [("birthday", True, False)]
    assert member_coupons(app, member)[0].value_fen == 5_000
    assert emulator.calls.get("message/template/send") is None


def test_29_february_birthdays_are_kept_on_28_february_in_other_years(app, run_jobs):
    leapling = make_member(app, birthday=date(2000, 2, 29))
    on_28 = make_member(app, birthday=date(2001, 2, 28))
    assert {g.member_id for g in run_daily(app, run_jobs, date(2027, 2, 28))} == {leapling, on_28}
    assert {g.member_id for g in run_daily(app, run_jobs, date(2028, 2, 28))} == {on_28}
    assert {g.member_id for g in run_daily(app, run_jobs, date(2028, 2, 29))} == {leapling}
    assert [c.source_key for c in member_coupons(app, leapling)] == [f"birthday:{leapling}:2027",
                                                                    f"birthday:{leapling}:2028"]


def test_anniversaries_count_in_store_time_from_the_first_full_year(app, emulator, run_jobs):
    openid = subscribed_shopper(emulator, "阿强")
    # 17:30 UTC on 10 March is 01:30 on 11 March in Shanghai: the store day is the 11th
    late = make_member(app, name="阿强", joined_at=datetime(2023, 3, 10, 17, 30, tzinfo=timezone.utc), oa_openid=openid)
    new = make_member(app, joined_at=datetime(2026, 3, 11, 2, 0, tzinfo=timezone.utc))
    assert run_daily(app, run_jobs, date(2026, 3, 10)) == []
    grants = run_daily(app, run_jobs, date(2026, 3, 11))
    assert [(g.member_id, g.kind, g.new) for g in grants] == [(late, "anniversary", True)]
    assert new not in {g.member_id for g in grants}  # joined today: not an anniversary
    [message] = template_messages(emulator, openid)
    assert "阿强，感谢您成为南山百货会员 3 周年！送您一张30元周年礼券" in message["content"]


def test_birthday_and_anniversary_on_the_same_day_both_arrive(app, emulator, run_jobs):
    openid = subscribed_shopper(emulator)
    member = make_member(app, birthday=date(1985, 7, 1), joined_at=datetime(2024, 7, 1, 4, tzinfo=timezone.utc),
                         oa_openid=openid)
    grants = run_daily(app, run_jobs, date(2026, 7, 1))
    assert sorted(g.kind for g in grants) == ["anniversary", "birthday"]
    assert len(template_messages(emulator, openid)) == 2
    assert len(member_coupons(app, member)) == 2


def test_merged_members_get_nothing(app, run_jobs):
    survivor = make_member(app)
    merged = make_member(app, birthday=date(1990, 9, 9))
    with uow(app) as session:
        row = session.get(Member, merged)
        row.status, row.merged_into_id = "merged", survivor
    assert run_daily(app, run_jobs, date(2026, 9, 9)) == []


def test_the_daily_job_runs_through_the_queue(app, wx, emulator, run_jobs):
    openid = subscribed_shopper(emulator)
    member = make_member(app, birthday=date(1990, 12, 24), oa_openid=openid)
    for _ in range(2):
        wx.queue.enqueue(f"{JOBS}.grant_birthday_and_anniversary", today="2026-12-24")
        run_jobs()
    assert len(member_coupons(app, member)) == 1
    assert len(template_messages(emulator, openid)) == 1


@requires_postgres
def test_two_daily_runs_at_once_issue_one_coupon_and_one_greeting(app, emulator, run_jobs):
    openids = [subscribed_shopper(emulator, f"s{i}") for i in range(5)]
    members = [make_member(app, birthday=date(1991, 8, 8), oa_openid=o) for o in openids]
    barrier = threading.Barrier(4)

    def run() -> int:
        barrier.wait()
        with uow(app):
            return sum(g.new for g in benefits.grant_birthday_and_anniversary(date(2026, 8, 8)))

    threads_new: list[int] = []
    workers = [threading.Thread(target=lambda: threads_new.append(run())) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    run_jobs()
    assert sum(threads_new) == 5
    for member, openid in zip(members, openids):
        assert len(member_coupons(app, member)) == 1
        assert len(template_messages(emulator, openid)) == 1


# -- the emulator's template API -------------------------------------------------------------------

def test_the_emulated_template_api_checks_touser_template_and_dedups(app, base_url, emulator):
    token = requests.post(f"{base_url}/_emulator/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": emulator.appid, "secret": emulator.secret}).json()["access_token"]
    url = f"{base_url}/_emulator/cgi-bin/message/template/send?access_token={token}"
    openid = subscribed_shopper(emulator)
    body = {"touser": openid, "template_id": "TM_DEMO_BENEFIT_0001", "client_msg_id": "birthday:1:2026",
            "data": {"keyword1": {"value": "生日礼券"}}}
    assert requests.post(url, json={**body, "touser": "nobody"}).json()["errcode"] == 40003
    assert requests.post(url, json={**body, "template_id": "nope"}).json()["errcode"] == 40037
    first = requests.post(url, json=body).json()
    second = requests.post(url, json=body).json()
    assert first["errcode"] == 0 and first["msgid"] == second["msgid"]
    assert len(template_messages(emulator, openid)) == 1
    emulator.shoppers[openid].subscribed = False
    assert requests.post(url, json={**body, "client_msg_id": "x"}).json()["errcode"] == 43004
    assert requests.post(url.split("?")[0] + "?access_token=bad", json=body).json()["errcode"] == 40001


# -- the other daily jobs --------------------------------------------------------------------------

def test_expiry_job_expires_the_year_before_last_for_every_member(app, wx, run_jobs):
    this_year = utcnow().astimezone(SHANGHAI).year
    old = datetime(this_year - 2, 6, 1, tzinfo=SHANGHAI)
    a, b, c = make_member(app), make_member(app), make_member(app)
    with uow(app):
        points.award_for_payment(a, 10_000, "a-old", old)
        points.award_for_payment(b, 10_000, "b-old", old)
        points.award_for_payment(b, 5_000, "b-new", utcnow())
        points.award_for_payment(c, 5_000, "c-new", utcnow())
    for _ in range(2):
        wx.queue.enqueue(f"{JOBS}.expire_points_for_year")
        run_jobs()
    with uow(app) as session:
        expired = session.scalars(select(PointsEntry).where(PointsEntry.reason == "expiry")).all()
        assert sorted((e.member_id, e.delta) for e in expired) == [(a, -100), (b, -100)]
        assert [session.get(Member, m).points_balance for m in (a, b, c)] == [0, 50, 50]


def test_levels_fall_as_spend_ages_out(app):
    member = make_member(app)
    with uow(app):
        points.award_for_payment(member, 600_000, "big", utcnow())
    with uow(app) as session:
        assert session.get(Member, member).level == "gold"
        for spend in session.scalars(select(SpendRecord)):  # a year on: out of the 12 months
            spend.occurred_at = utcnow() - timedelta(days=366)
    with uow(app):
        assert benefit_jobs.recompute_levels() == 1
        assert benefit_jobs.recompute_levels() == 0
    with uow(app) as session:
        assert session.get(Member, member).level == "silver"


def test_resync_queues_a_sync_for_cards_behind_the_ledger(app, wx, monkeypatch):
    ahead, behind = make_member(app), make_member(app)
    with uow(app) as session:
        for m in (ahead, behind):
            points.award_for_payment(m, 1_000, f"p-{m}", utcnow())
        latest = {m: session.scalar(select(PointsEntry.id).where(PointsEntry.member_id == m)) for m in (ahead, behind)}
        session.add(MemberCard(member_id=ahead, card_id="pCard", code="111", openid="o1", status="active",
                               synced_ledger_id=latest[ahead]))
        session.add(MemberCard(member_id=behind, card_id="pCard", code="222", openid="o2", status="active",
                               synced_ledger_id=0))
        session.add(MemberCard(member_id=ahead, card_id="pCard", code="333", openid="o1", status="deleted"))
    queued: list[tuple[str, dict]] = []
    monkeypatch.setattr(wx.queue, "enqueue", lambda path, **kw: queued.append((path, kw)))
    with uow(app):
        assert benefit_jobs.resync_cards() == 1
    assert queued == [("members.jobs.sync_card", {"member_id": behind})]
