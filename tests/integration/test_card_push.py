"""`card push`: the member card is created once, its activation form set, and updated only when
config/member_card.json changes what WeChat shows."""
from __future__ import annotations

import copy

import pytest
import requests
from sqlalchemy import select

from members import cards
from members.models import CardDefinition
from members.program import load_program, parse_program


def push(app) -> str:
    result = app.test_cli_runner().invoke(args=["card", "push"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def reachable(base_url):
    requests.get(f"{base_url}/healthz", timeout=10)


def definitions(app, wx) -> list[CardDefinition]:
    with app.app_context():
        return list(wx.db.session.scalars(select(CardDefinition)))


def test_the_body_follows_the_reference(app):
    with app.app_context():
        body = cards.card_create_body()
    member_card = body["card"]["member_card"]
    assert body["card"]["card_type"] == "MEMBER_CARD"
    base = member_card["base_info"]
    assert base["date_info"] == {"type": "DATE_TYPE_PERMANENT"}
    assert (base["get_limit"], base["use_custom_code"], base["can_give_friend"]) == (1, False, False)
    assert base["brand_name"] == "南山百货" and base["sku"]["quantity"] > 0
    assert (member_card["wx_activate"], member_card["supply_bonus"], member_card["supply_balance"]) == (True, True, False)
    assert member_card["custom_field1"] == {"name_type": "FIELD_NAME_TYPE_LEVEL"}
    form = cards.activation_form_body("pX")
    assert form["required_form"]["common_field_id_list"] == load_program().raw["activation_form"]["required"]


def test_push_creates_once_and_sets_the_form(app, wx, emulator, reachable):
    assert "created" in push(app)
    assert "already up to date" in push(app)
    assert emulator.calls.get("card/create") == 1 and emulator.calls.get("card/update") is None
    assert emulator.calls.get("card/membercard/activateuserform/set") == 1
    [definition] = definitions(app, wx)
    assert definition.card_id in emulator.cards
    assert emulator.cards[definition.card_id]["form"]["required_form"]["common_field_id_list"] == \
        ["USER_FORM_INFO_FLAG_MOBILE", "USER_FORM_INFO_FLAG_NAME", "USER_FORM_INFO_FLAG_BIRTHDAY"]
    with app.app_context():
        assert definition.content_hash == load_program().content_hash


def test_push_updates_only_when_the_definition_changed(app, wx, emulator, reachable, monkeypatch):
    push(app)
    changed_raw = copy.deepcopy(load_program().raw)
    changed_raw["card"]["notice"] = "结账时请出示会员码"
    changed = parse_program(changed_raw)
    monkeypatch.setattr("members.program.load_program", lambda *a, **k: changed)
    monkeypatch.setattr("members.cards.load_program", lambda *a, **k: changed)
    assert "updated" in push(app)
    assert "already up to date" in push(app)
    assert emulator.calls.get("card/create") == 1 and emulator.calls.get("card/update") == 1
    [definition] = definitions(app, wx)
    assert emulator.cards[definition.card_id]["card"]["member_card"]["base_info"]["notice"] == "结账时请出示会员码"
    assert definition.content_hash == changed.content_hash


def test_a_failed_form_leaves_one_card_that_the_next_push_finishes(app, wx, emulator, base_url, reachable):
    requests.post(f"{base_url}/_emulator/control/faults",
                  json={"api": "card/membercard/activateuserform/set", "errcode": -1}, timeout=10)
    result = app.test_cli_runner().invoke(args=["card", "push"])
    assert result.exit_code != 0 and "card push failed" in result.output
    assert "updated" in push(app)
    assert emulator.calls.get("card/create") == 1
    [definition] = definitions(app, wx)
    assert emulator.cards[definition.card_id]["form"] is not None


def test_wechat_errors_are_reported(app, emulator, base_url, reachable):
    requests.post(f"{base_url}/_emulator/control/faults", json={"api": "card/create", "errcode": 45009}, timeout=10)
    result = app.test_cli_runner().invoke(args=["card", "push"])
    assert result.exit_code != 0 and "45009" in result.output


def test_emulator_card_apis_answer_with_wechats_codes(app, emulator, base_url, reachable):
    push(app)
    with app.app_context():
        from wx_service.ground.extensions import wechat_client

        client = wechat_client()
        base = client.api_base
        from wx_service.ground.wechat_client import WeChatApiError

        with pytest.raises(WeChatApiError) as unknown:
            client.post(f"{base}/card/membercard/updateuser", data={"code": "123", "card_id": next(iter(emulator.cards)),
                                                                   "bonus": 5})
        assert unknown.value.errcode == 40056
        with pytest.raises(WeChatApiError) as bad_card:
            client.post(f"{base}/card/update", data={"card_id": "pNope", "member_card": {}})
        assert bad_card.value.errcode == 40073
        qr = client.post(f"{base}/card/qrcode/create", data={
            "action_name": "QR_CARD", "action_info": {"card": {"card_id": next(iter(emulator.cards)),
                                                               "outer_str": "poster-1"}}})
        assert qr["ticket"] and qr["show_qrcode_url"]
    openid = next(iter(emulator.shoppers))
    claimed = requests.post(f"{base_url}/_emulator/shopper/get_card", json={"openid": openid, "ticket": qr["ticket"]},
                            timeout=10).json()
    with app.app_context():
        found = wechat_client().post(f"{base}/card/code/get", data={"code": claimed["code"], "check_consume": True})
        assert found["openid"] == openid and found["user_card_status"] == "NORMAL" and found["can_consume"]
        added = wechat_client().post(f"{base}/card/membercard/updateuser",
                                     data={"code": claimed["code"], "card_id": found["card"]["card_id"], "add_bonus": 7})
        assert added["result_bonus"] == 7
    assert emulator.card_codes[claimed["code"]]["outer_str"] == "poster-1"


def test_card_create_refuses_a_body_without_required_fields(app, emulator, reachable):
    with app.app_context():
        from wx_service.ground.extensions import wechat_client
        from wx_service.ground.wechat_client import WeChatApiError

        client = wechat_client()
        body = cards.card_create_body()
        del body["card"]["member_card"]["prerogative"]
        with pytest.raises(WeChatApiError) as refused:
            client.post(f"{client.api_base}/card/create", data=body)
    assert refused.value.errcode == 47001 and emulator.cards == {}


def test_demo_members_cover_every_level_with_cards_once_the_card_exists(app, wx, emulator, reachable):
    from members.models import Member, MemberCard
    from wx_service.edges.cli.demo import register_demo_cards

    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    push(app)
    for _ in range(2):  # idempotent
        assert runner.invoke(args=["demo-data"]).exit_code == 0
    with app.app_context():
        register_demo_cards(app)
        # The demo's four card holders come first; the funnel demo's generated members (silver, no
        # points, no card) after them.
        members = list(wx.db.session.scalars(select(Member).order_by(Member.id)))
        assert [(m.level, m.points_balance) for m in members[:4]] == \
            [("silver", 300), ("gold", 6000), ("platinum", 25000), ("diamond", 60000)]
        assert {(m.level, m.points_balance) for m in members[4:]} <= {("silver", 0)}
        demo_cards = list(wx.db.session.scalars(select(MemberCard).order_by(MemberCard.id)))
        assert [c.status for c in demo_cards] == ["active"] * 4
    assert [emulator.card_codes[c.code]["bonus"] for c in demo_cards] == [300, 6000, 25000, 60000]
    assert emulator.card_codes[demo_cards[3].code]["custom_fields"][1] == "钻石卡会员"
