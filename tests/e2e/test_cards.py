"""The member card end to end: the emulator's shopper claims, fills in, views and deletes the card;
its pushes go through the webhook (safe mode, encrypted); jobs call the emulated card APIs."""
from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest
import requests
from sqlalchemy import select

from members import jobs as member_jobs
from members.models import CardDefinition, Member, MemberCard, MemberIdentity, PointsEntry
from members.points import award_for_payment
from tests.e2e.test_webhook import event_fields, open_reply, push, text_fields
from wx_service.edges.cli.members import push_card
from wx_service.ground.db import utcnow

TIMEOUT = 15


# -- helpers ----------------------------------------------------------------------------------
def act(base_url: str, action: str, openid: str, **data: Any) -> dict[str, Any]:
    response = requests.post(f"{base_url}/_emulator/shopper/{action}", json={"openid": openid, **data},
                             timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def fault(base_url: str, api: str, errcode: int, times: int = 1) -> None:
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": api, "errcode": errcode, "times": times},
                  timeout=TIMEOUT).raise_for_status()


def rows(wx, model, *where) -> list:
    with wx.db.unit_of_work() as session:
        return list(session.scalars(select(model).where(*where)))


def one(wx, model, *where):
    found = rows(wx, model, *where)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def card_id(app, base_url, emulator) -> str:
    """The card, pushed to the emulator as `card push` does."""
    requests.get(f"{base_url}/healthz", timeout=TIMEOUT)  # the emulator learns the push URL
    with app.app_context():
        assert "created" in push_card()
    return next(iter(emulator.cards))


@pytest.fixture
def shopper(base_url, emulator) -> str:
    openid = next(iter(emulator.shoppers))
    act(base_url, "subscribe", openid)
    return openid


def claim_and_activate(base_url, run_jobs, openid: str, phone: str = "13900000001") -> str:
    code = act(base_url, "get_card", openid, outer_str="counter-l2")["code"]
    act(base_url, "submit_card_form", openid, name="李雷", phone=phone, birthday="1992-03-04")
    run_jobs()
    return code


def pay(app, wx, member_id: int, yuan: int, key: str) -> None:
    with app.app_context(), wx.db.unit_of_work():
        award_for_payment(member_id, yuan * 100, key, utcnow())


# -- claiming ---------------------------------------------------------------------------------
def test_user_get_card_records_the_card_and_creates_the_member(app, wx, base_url, emulator, card_id, shopper):
    outcome = act(base_url, "get_card", shopper, outer_str="counter-l2")
    assert outcome["delivered"] and outcome["mode"] == "safe"
    card = one(wx, MemberCard, MemberCard.code == outcome["code"])
    assert (card.card_id, card.openid, card.status, card.outer_str, card.source_scene) == \
        (card_id, shopper, "issued", "counter-l2", "SOURCE_SCENE_QRCODE")
    identity = one(wx, MemberIdentity, MemberIdentity.openid == shopper)
    assert identity.member_id == card.member_id and identity.kind == "oa"
    assert one(wx, Member, Member.id == card.member_id).unionid == emulator.shoppers[shopper].unionid


def test_the_official_user_get_card_sample_is_handled(app, wx, base_url, emulator, settings):
    """The published sample (reference §3.4), for an openid never seen: a member is created."""
    fields = event_fields(emulator, "oZI8Fj040-be6rlDohc6gkoPOQTQ", "user_get_card",
                          CardId="pZI8Fjwsy5fVPRBeD78J4RmqVvBc", IsGiveByFriend="0", UserCardCode="226009850808",
                          FriendUserName="", OuterId="0", OldUserCardCode="", OuterStr="12b",
                          IsRestoreMemberCard="0", IsRecommendByFriend="0")
    _, _, response = push(base_url, emulator, fields, mode="safe")
    assert response.status_code == 200 and response.content in (b"success", b"")
    card = one(wx, MemberCard, MemberCard.code == "226009850808")
    assert card.outer_str == "12b" and card.status == "issued"
    assert one(wx, MemberIdentity, MemberIdentity.openid == "oZI8Fj040-be6rlDohc6gkoPOQTQ").member_id == card.member_id


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_card_events_in_every_mode(app, wx, base_url, emulator, card_id, shopper, mode):
    emulator.push_mode = mode
    code = act(base_url, "get_card", shopper)["code"]
    viewed = act(base_url, "view_card", shopper)
    assert viewed["delivered"] and viewed["mode"] == mode
    assert one(wx, MemberCard, MemberCard.code == code).last_viewed_at is not None


def test_two_card_events_in_one_second_are_both_handled(app, wx, base_url, emulator):
    """The dedup key includes CardId and UserCardCode: two claims in one second are not a retry."""
    openid, now = "oSameSecond0001", int(time.time())
    for code in ("700000000001", "700000000002"):
        fields = event_fields(emulator, openid, "user_get_card", create_time=now, CardId="pCardSameSecond",
                              UserCardCode=code, OuterStr="", IsRestoreMemberCard="0")
        assert push(base_url, emulator, fields)[2].status_code == 200
    assert {c.code for c in rows(wx, MemberCard, MemberCard.openid == openid)} == {"700000000001", "700000000002"}
    # ... while a true retry (same bytes) is still handled once.
    fields = event_fields(emulator, openid, "user_view_card", create_time=now, CardId="pCardSameSecond",
                          UserCardCode="700000000001", OuterStr="")
    query, body, first = push(base_url, emulator, fields)
    again = requests.post(f"{base_url}/wechat", params=query, data=body, timeout=TIMEOUT)
    assert first.status_code == again.status_code == 200
    from wx_service.ground.models import InboundPush

    assert len(rows(wx, InboundPush, InboundPush.event == "user_view_card")) == 1


def test_del_card_keeps_the_member_and_claiming_again_restores_it(app, wx, base_url, emulator, card_id, shopper,
                                                                  run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    member_id = one(wx, MemberCard, MemberCard.code == code).member_id
    act(base_url, "del_card", shopper)
    card = one(wx, MemberCard, MemberCard.code == code)
    assert card.status == "deleted" and card.deleted_at is not None
    member = one(wx, Member, Member.id == member_id)
    assert member.status == "active" and member.phone == "13900000001"
    emulator.clock_offset += 2  # the same claim in the same second would be WeChat's retry
    again = act(base_url, "get_card", shopper)
    assert again["code"] == code
    assert one(wx, MemberCard, MemberCard.code == code).status == "active"
    assert len(rows(wx, Member)) == 1


def test_review_results_mark_the_definition(app, wx, base_url, emulator, card_id):
    push(base_url, emulator, event_fields(emulator, "oPlatform", "card_not_pass_check", CardId=card_id,
                                          RefuseReason="logo 不清晰"))
    definition = one(wx, CardDefinition, CardDefinition.card_id == card_id)
    assert (definition.status, definition.refuse_reason) == ("rejected", "logo 不清晰")
    push(base_url, emulator, event_fields(emulator, "oPlatform", "card_pass_check", CardId=card_id))
    definition = one(wx, CardDefinition, CardDefinition.card_id == card_id)
    assert (definition.status, definition.refuse_reason) == ("approved", "")


@pytest.mark.parametrize("event,extra", [
    ("user_view_card", {"OuterStr": ""}),
    ("user_del_card", {}),
    ("user_consume_card", {"ConsumeSource": "FROM_API", "LocationName": "", "StaffOpenId": "", "OuterStr": ""}),
    ("update_member_card", {"ModifyBonus": "10", "ModifyBalance": "0"}),
    ("submit_membercard_user_info", {}),
])
def test_events_for_unknown_codes_change_nothing(app, wx, base_url, emulator, event, extra, run_jobs):
    fields = event_fields(emulator, "oNeverSeen0001", event, CardId="pUnknownCard", UserCardCode="999999999999",
                          **extra)
    response = push(base_url, emulator, fields)[2]
    assert response.status_code == 200 and response.content in (b"success", b"")
    run_jobs()
    assert rows(wx, MemberCard) == [] and rows(wx, Member) == []


def test_consume_and_update_events_are_recorded(app, wx, base_url, emulator, card_id, shopper, run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    for event, extra in (("user_consume_card", {"ConsumeSource": "FROM_API", "OuterStr": ""}),
                         ("update_member_card", {"ModifyBonus": "5", "ModifyBalance": "0"})):
        fields = event_fields(emulator, shopper, event, CardId=card_id, UserCardCode=code, **extra)
        assert push(base_url, emulator, fields)[2].status_code == 200
    from wx_service.ground.models import InboundPush

    handled = {p.event: p.handler for p in rows(wx, InboundPush)}
    assert handled["user_consume_card"].endswith("on_user_consume_card")
    assert handled["update_member_card"].endswith("on_update_member_card")
    assert one(wx, MemberCard, MemberCard.code == code).status == "active"


# -- activation -------------------------------------------------------------------------------
def test_activation_end_to_end(app, wx, base_url, emulator, card_id, shopper, run_jobs):
    code = act(base_url, "get_card", shopper, outer_str="counter-l2")["code"]
    member_id = one(wx, MemberCard, MemberCard.code == code).member_id
    pay(app, wx, member_id, 120, "pre-activation")  # points earned before activating show on the card
    act(base_url, "submit_card_form", shopper, name="李雷", phone="13900000001", birthday="1992-03-04")
    run_jobs()
    card = one(wx, MemberCard, MemberCard.code == code)
    assert card.status == "active" and card.activated_at is not None
    member = one(wx, Member, Member.id == member_id)
    assert (member.name, member.phone, member.birthday) == ("李雷", "13900000001", date(1992, 3, 4))
    face = act(base_url, "view_card", shopper)["card"]
    assert face == {"code": code, "card_id": card_id, "status": "NORMAL", "active": True, "bonus": 120,
                    "level": "银卡会员"}
    assert emulator.calls.get("card/membercard/userinfo/get") == 1
    assert emulator.calls.get("card/membercard/activate") == 1
    assert card.synced_ledger_id == max(e.id for e in rows(wx, PointsEntry, PointsEntry.member_id == member_id))


def test_a_second_activation_changes_nothing(app, wx, base_url, emulator, card_id, shopper, run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    before = one(wx, MemberCard, MemberCard.code == code)
    act(base_url, "submit_card_form", shopper, name="韩梅梅", phone="13900000009", birthday="1990-01-01")
    run_jobs()
    with app.app_context(), wx.db.unit_of_work():  # a stray job for the active card is a no-op too
        member_jobs.activate_card(code)
    after = one(wx, MemberCard, MemberCard.code == code)
    assert after.activated_at == before.activated_at and after.status == "active"
    member = one(wx, Member, Member.id == after.member_id)
    assert (member.name, member.phone) == ("李雷", "13900000001")
    assert emulator.calls.get("card/membercard/activate") == 1


def test_a_phone_bound_to_another_member_leaves_the_card_unactivated(app, wx, base_url, emulator, card_id, run_jobs):
    first, second = list(emulator.shoppers)[:2]
    for openid in (first, second):
        act(base_url, "subscribe", openid)
    run_jobs()  # profiles fetched: both members will have their unionids
    claim_and_activate(base_url, run_jobs, first, phone="13900000001")
    code = claim_and_activate(base_url, run_jobs, second, phone="13900000001")
    assert one(wx, MemberCard, MemberCard.code == code).status == "issued"
    assert emulator.card_codes[code]["has_active"] is False
    said = [m for m in emulator.shoppers[second].chat if m["via"] == "customer_service"]
    assert said and "已绑定" in said[-1]["content"]


# -- syncing points to the card -----------------------------------------------------------------
def test_points_change_reaches_the_card_face(app, wx, base_url, emulator, card_id, shopper, run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    member_id = one(wx, MemberCard, MemberCard.code == code).member_id
    pay(app, wx, member_id, 6000, "order-1")  # 6000 points, and gold
    run_jobs()
    face = act(base_url, "view_card", shopper)["card"]
    assert (face["bonus"], face["level"]) == (6000, "金卡会员")
    update = emulator.card_codes[code]["updates"][-1]
    assert update["bonus"] == 6000 and update["add_bonus"] == 6000 and update["custom_field_value1"] == "金卡会员"


def test_a_system_error_on_updateuser_is_retried_and_ends_synced(app, wx, base_url, emulator, card_id, shopper,
                                                                 run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    member_id = one(wx, MemberCard, MemberCard.code == code).member_id
    fault(base_url, "card/membercard/updateuser", -1)
    pay(app, wx, member_id, 200, "order-2")
    run_jobs()
    assert emulator.calls["card/membercard/updateuser"] == 2
    assert emulator.card_codes[code]["bonus"] == 200
    latest = max(e.id for e in rows(wx, PointsEntry, PointsEntry.member_id == member_id))
    assert one(wx, MemberCard, MemberCard.code == code).synced_ledger_id == latest


def test_the_daily_quota_leaves_the_card_behind_and_is_not_retried(app, wx, base_url, emulator, card_id, shopper,
                                                                    run_jobs):
    code = claim_and_activate(base_url, run_jobs, shopper)
    member_id = one(wx, MemberCard, MemberCard.code == code).member_id
    synced_before = one(wx, MemberCard, MemberCard.code == code).synced_ledger_id
    fault(base_url, "card/membercard/updateuser", 45009, times=5)
    pay(app, wx, member_id, 200, "order-3")
    run_jobs()
    assert emulator.calls["card/membercard/updateuser"] == 1
    assert emulator.card_codes[code]["bonus"] == 0
    card = one(wx, MemberCard, MemberCard.code == code)
    latest = max(e.id for e in rows(wx, PointsEntry, PointsEntry.member_id == member_id))
    assert card.synced_ledger_id == synced_before < latest


# -- "my membership" ----------------------------------------------------------------------------
def test_my_membership_without_a_card_says_how_to_get_one(app, wx, base_url, emulator, shopper):
    reply = act(base_url, "text", shopper, content="会员")
    assert reply["reply"] == "text"
    assert "还没有" in emulator.shoppers[shopper].chat[-1]["content"]


@pytest.mark.parametrize("how", ["会员", "我的会员", "积分", "menu"])
def test_my_membership_shows_code_level_points_benefits_and_next_level(app, wx, base_url, emulator, card_id,
                                                                         shopper, run_jobs, settings, how):
    code = claim_and_activate(base_url, run_jobs, shopper)
    pay(app, wx, one(wx, MemberCard, MemberCard.code == code).member_id, 6000, "order-4")
    run_jobs()
    if how == "menu":
        _, _, response = push(base_url, emulator, event_fields(emulator, shopper, "CLICK", key="MY_MEMBERSHIP"))
    else:
        _, _, response = push(base_url, emulator, text_fields(emulator, shopper, how))
    content = open_reply(settings, response, encrypted=True)["Content"]
    assert code in content and "金卡会员" in content and "6000" in content
    assert "免费停车 2 小时" in content and "再消费 14000.00 元即可升级为白金卡会员" in content


def test_no_sync_job_leaves_before_the_transaction_commits(app, wx, base_url, emulator, card_id, run_jobs,
                                                           monkeypatch):
    """Savepoints (the ledger's, the coupons') are not the commit: a transaction that awards points
    to two members and then rolls back queues no sync job at all (core fix in wx_service/db.py)."""
    first, second = list(emulator.shoppers)[:2]
    codes = [claim_and_activate(base_url, run_jobs, openid, phone=f"1390000000{i}")
             for i, openid in enumerate((first, second))]
    members = [one(wx, MemberCard, MemberCard.code == code).member_id for code in codes]
    queued: list[str] = []
    real_enqueue = wx.queue.enqueue
    monkeypatch.setattr(wx.queue, "enqueue", lambda path, **kw: (queued.append(path), real_enqueue(path, **kw)))
    with pytest.raises(RuntimeError), app.app_context(), wx.db.unit_of_work():
        for member_id in members:
            award_for_payment(member_id, 600_000, f"rolled-back-{member_id}", utcnow())  # gold: a coupon too
        raise RuntimeError("the request failed after the awards")
    run_jobs()
    assert queued == []
    assert emulator.calls.get("card/membercard/updateuser") is None
    assert [emulator.card_codes[code]["bonus"] for code in codes] == [0, 0]


def test_a_claim_without_a_code_is_ignored(app, wx, base_url, emulator):
    fields = event_fields(emulator, "oNoCode0001", "user_get_card", CardId="pCard", UserCardCode="")
    response = push(base_url, emulator, fields)[2]
    assert response.status_code == 200
    assert rows(wx, MemberCard) == [] and rows(wx, Member) == []


def test_my_membership_sends_the_card_to_a_shopper_without_one_and_one_tap_claims_it(
        app, wx, base_url, emulator, card_id, shopper, run_jobs):
    """The OA menu is a way to get the card: the shopper is sent it and claims it from the chat."""
    _, _, response = push(base_url, emulator, event_fields(emulator, shopper, "CLICK", key="MY_MEMBERSHIP"))
    assert response.status_code == 200
    run_jobs()
    offered = [m for m in emulator.shoppers[shopper].chat if m["kind"] == "wxcard"]
    assert len(offered) == 1 and offered[0]["card_id"] == card_id and offered[0]["via"] == "customer_service"
    code = act(base_url, "get_card", shopper, card_id=card_id, outer_str="oa_menu")["code"]
    card = one(wx, MemberCard, MemberCard.code == code)
    assert card.outer_str == "oa_menu" and card.openid == shopper


def test_my_membership_before_the_card_is_pushed_explains_how_to_get_it(app, wx, base_url, emulator, shopper,
                                                                        run_jobs):
    act(base_url, "text", shopper, content="会员")
    run_jobs()
    assert "还没有" in emulator.shoppers[shopper].chat[-1]["content"]
    assert not [m for m in emulator.shoppers[shopper].chat if m["kind"] == "wxcard"]
