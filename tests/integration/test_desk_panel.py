"""The side panel: who the shopper is, masked; what they bought and had refunded; their earlier
chats; what they came from. The full phone number only by a reveal, which is recorded each time."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from members.models import Member, MemberCard
from payments.models import Order, Refund
from service_desk import panel
from service_desk.exceptions import NoPhone
from service_desk.models import ASSIGNED, RESOLVED, PhoneReveal
from tests.integration.desk_read_helpers import T0, agent, conv, minutes
from tests.integration.members_helpers import make_member, uow
from tests.integration.test_service_desk import make_agent, make_team

PHONE = "13812345678"


@pytest.fixture
def desk(app):
    cosmetics, watches = make_team(app, "1F-cosmetics"), make_team(app, "B1-watches")
    return {"cosmetics": cosmetics, "watches": watches, "lin": make_agent(app, cosmetics, "lin"),
            "wu": make_agent(app, watches, "wu")}


def order(app, no: str, *, member_id: int | None = None, openid: str | None = None, amount: int = 100,
          at=T0, counter: str = "", state: str = "PAID") -> int:
    with uow(app) as session:
        row = Order(out_trade_no=no, kind="jsapi", appid="wxtest", amount_fen=amount, member_id=member_id,
                    payer_openid=openid, created_at=at, counter=counter, description=f"goods {no}", state=state)
        session.add(row)
        session.flush()
        return row.id


def reveal_count(app) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(PhoneReveal))


def test_the_panel_shows_the_member_masked_their_orders_refunds_and_earlier_chats(app, desk):
    member = make_member(app, level="gold", name="王女士", oa_openid="oShopperWithCard01")
    with uow(app) as session:
        m = session.get(Member, member)
        m.phone, m.points_balance = PHONE, 1234
        session.add(MemberCard(member_id=member, card_id="pCARD", code="880012345678", openid="oShopperWithCard01"))
    for n in range(12):
        order(app, f"T{n:03d}", member_id=member, amount=1000 + n, at=T0 + minutes(n), counter="1F-cosmetics")
    refunded = order(app, "T-REFUNDED", openid="oShopperWithCard01", amount=5000, at=T0 - minutes(600))
    order(app, "T-SOMEONE-ELSE", openid="oSomeoneElse", at=T0 + minutes(100))
    with uow(app) as session:
        session.add(Refund(out_refund_no="R1", order_id=refunded, amount_fen=2000, status="SUCCESS",
                           reason="size", created_at=T0))
    before = conv(app, "oShopperWithCard01", team_id=desk["cosmetics"], status=RESOLVED, assignee=desk["lin"],
                  created_at=T0 - minutes(1000), resolved_at=T0 - minutes(900), csat=5, source="menu")
    conv(app, "oShopperWithCard01", team_id=desk["watches"], status=RESOLVED, assignee=desk["wu"],
         created_at=T0 - minutes(800), resolved_at=T0 - minutes(700))  # another team's: not shown
    now = conv(app, "oShopperWithCard01", team_id=desk["cosmetics"], status=ASSIGNED, assignee=desk["lin"],
               member_id=member, context="order:T005", source="mp_contact")
    with uow(app) as session:
        shown = panel.side_panel(agent(session, desk["lin"]), now)
    assert shown["member"] == {"id": member, "name": "王女士", "level": "gold", "points_balance": 1234,
                               "card_code_masked": "********5678", "card_status": "issued",
                               "phone_masked": "138****5678", "has_phone": True,
                               "joined_at": shown["member"]["joined_at"]}
    assert PHONE not in repr(shown) and "880012345678" not in repr(shown)
    assert [o["out_trade_no"] for o in shown["orders"]] == [f"T{n:03d}" for n in range(11, 1, -1)]
    assert shown["orders"][0] == {"out_trade_no": "T011", "amount_fen": 1011, "status": "PAID",
                                  "counter": "1F-cosmetics", "description": "goods T011", "kind": "jsapi",
                                  "created_at": (T0 + minutes(11)).isoformat(), "paid_at": None}
    assert [(r["out_refund_no"], r["out_trade_no"], r["amount_fen"]) for r in shown["refunds"]] == [
        ("R1", "T-REFUNDED", 2000)]
    assert [(c["id"], c["status"], c["csat"], c["source"]) for c in shown["earlier_conversations"]] == [
        (before, RESOLVED, 5, "menu")]
    assert shown["context"]["source"] == "mp_contact" and shown["context"]["raw"] == "order:T005"
    assert shown["context"]["parsed"]["kind"] == "order"
    assert shown["context"]["parsed"]["order"]["amount_fen"] == 1005
    assert shown["reservations"] == []  # this shopper has booked nothing


def test_a_shopper_who_is_no_member_still_gets_a_panel(app, desk):
    order(app, "T-GUEST", openid="oGuestShopper0001", amount=3900)
    c = conv(app, "oGuestShopper0001", team_id=None, context="counter:1F-cosmetics")
    other = conv(app, "oAnotherShopper01", team_id=None, context="order:T-GUEST")
    with uow(app) as session:
        me = agent(session, desk["lin"])
        shown = panel.side_panel(me, c)
        assert shown["member"] is None
        assert [o["out_trade_no"] for o in shown["orders"]] == ["T-GUEST"]
        assert shown["context"]["parsed"] == {"kind": "counter", "value": "1F-cosmetics"}
        # an order context naming someone else's order shows no order
        assert panel.side_panel(me, other)["context"]["parsed"] == {"kind": "order", "value": "T-GUEST",
                                                                    "order": None}
        with pytest.raises(NoPhone):
            panel.reveal_phone(me, c)


def test_every_reveal_of_the_phone_is_recorded_and_the_number_is_never_logged(app, desk, caplog):
    member = make_member(app, name="李先生")
    no_phone = make_member(app, name="没电话")
    with uow(app) as session:
        session.get(Member, member).phone = PHONE
    c = conv(app, "oRevealShopper001", team_id=desk["cosmetics"], status=ASSIGNED, assignee=desk["lin"],
             member_id=member)
    bare = conv(app, "oNoPhoneShopper01", team_id=desk["cosmetics"], member_id=no_phone)
    caplog.set_level(logging.DEBUG)
    for expected in (1, 2):
        with uow(app) as session:
            assert panel.reveal_phone(agent(session, desk["lin"]), c) == PHONE
        assert reveal_count(app) == expected
    with pytest.raises(NoPhone), uow(app) as session:
        panel.reveal_phone(agent(session, desk["lin"]), bare)
    assert reveal_count(app) == 2
    assert all(PHONE not in record.getMessage() and PHONE not in repr(vars(record)) for record in caplog.records)
    with uow(app):
        audit = panel.reveals(member)
    assert [(r["agent_name"], r["conversation_id"], r["member_id"]) for r in audit] == [("Lin", c, member)] * 2
