"""The funnel against a hand-built week of touches whose answers were worked out by hand, in both
views (last-touch, first-touch) and both groupings (campaign, brand). The arithmetic is in the
comments beside each expected row; every number is asserted exactly.

The range is store days 2026-11-02 .. 2026-11-08 (Asia/Shanghai); the window is 7 days.

Shoppers (m = member, o = openid only):
  A  oA → mA. 11-02 10:00 scans and follows c-spring (as an openid: before membership);
     11-02 11:00 claims the card (member touch); 11-03 15:00 pays 300.00 at L1-01 (brand B1);
     11-10 pays 999.00 at L1-01 (after the range: not counted).
  B  oB → mB. 10-20 scans c-spring (before the range, 16 days before the payment: outside the
     window); 11-04 09:00 scans c-vip; 11-05 12:00 pays 200.00 at L2-05 (brand B2).
  C  oC → mC. 10-25 scans c-vip (12 days before the payment: outside the window); 11-06 10:00
     pays 100.00 in the mini-program (counter "mp": not a visit).
  D  oD, never a member. 11-03 scans and follows c-spring; 11-04 scans counter QR L1-01 (a scene
     that is brand B1's counter code: campaign "L1-01" and brand B1).
  E  oE → mE. No campaign touch at all; 11-07 pays 80.00 at L1-01 (brand B1).
  F  oF → mF. 11-06 09:00 scans and follows c-vip, 11-06 10:00 claims the card; 11-07 11:00
     checks in for a reservation at L2-05 and 11-07 12:00 pays 500.00 there; 11-09 200.00 of it
     is refunded (after the range: still taken off that sale).
  G  oG → mG. 11-08 pays 120.00 online (counter "") for an order whose source is c-vip.
  H  oH → mH. No campaign touch; 11-03 pays 50.00 at L1-01 (B1), 11-06 pays 70.00 at L2-05 (B2).
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from marketing import funnel, touches
from marketing.models import Brand
from members.models import Member, MemberIdentity
from tests.integration.members_helpers import uow

CST = ZoneInfo("Asia/Shanghai")
SINCE, UNTIL = date(2026, 11, 2), date(2026, 11, 8)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=CST)


@pytest.fixture
def week(app) -> dict[str, int]:
    """The touches above; returns the brand ids by counter code."""
    with uow(app) as session:
        b1, b2 = Brand(name="Lanvin", counter_code="L1-01"), Brand(name="Muji", counter_code="L2-05")
        session.add_all([b1, b2])
        members: dict[str, int] = {}
        for who in "ABCEFGH":
            member = Member(level="silver", joined_at=at(10, 1))
            session.add(member)
            session.flush()
            session.add(MemberIdentity(member_id=member.id, kind="oa", openid=f"o{who}"))
            members[who] = member.id
        session.flush()
        r = touches.record

        def pay(who: str, key: str, fen: int, when: datetime, counter: str, campaign: str = "") -> None:
            r("payment", key=key, member_id=members[who], openid=f"o{who}", amount_fen=fen, counter=counter,
              brand_counter=counter, campaign=campaign, occurred_at=when)

        # A: pre-member touches by openid only, then the card, then a payment at B1.
        touches.record_push("oA", int(at(11, 2, 10).timestamp()), "c-spring", follow=True)
        r("member", key="card:A", member_id=members["A"], openid="oA", occurred_at=at(11, 2, 11))
        pay("A", "P-A1", 30_000, at(11, 3, 15), "L1-01")
        pay("A", "P-A2", 99_900, at(11, 10), "L1-01")
        # B
        r("scan", key="oB:1", openid="oB", campaign="c-spring", occurred_at=at(10, 20))
        r("scan", key="oB:2", openid="oB", campaign="c-vip", occurred_at=at(11, 4, 9))
        pay("B", "P-B1", 20_000, at(11, 5, 12), "L2-05")
        # C
        r("scan", key="oC:1", openid="oC", campaign="c-vip", occurred_at=at(10, 25))
        pay("C", "P-C1", 10_000, at(11, 6, 10), "mp")
        # D
        touches.record_push("oD", int(at(11, 3).timestamp()), "c-spring", follow=True)
        touches.record_push("oD", int(at(11, 4).timestamp()), "L1-01", follow=False)
        # E
        pay("E", "P-E1", 8_000, at(11, 7), "L1-01")
        # F
        touches.record_push("oF", int(at(11, 6, 9).timestamp()), "c-vip", follow=True)
        r("member", key="card:F", member_id=members["F"], openid="oF", occurred_at=at(11, 6, 10))
        r("check_in", key="booking:F", member_id=members["F"], openid="oF", counter="L2-05",
          brand_counter="L2-05", occurred_at=at(11, 7, 11))
        pay("F", "P-F1", 50_000, at(11, 7, 12), "L2-05")
        r("refund", key="R-F1", member_id=members["F"], openid="oF", amount_fen=20_000, ref="P-F1",
          occurred_at=at(11, 9))
        # G
        pay("G", "P-G1", 12_000, at(11, 8), "", campaign="c-vip")
        # H
        pay("H", "P-H1", 5_000, at(11, 3), "L1-01")
        pay("H", "P-H2", 7_000, at(11, 6), "L2-05")
        return {"L1-01": b1.id, "L2-05": b2.id}


def table(app, view: str, grouping: str, days: int | None = None) -> tuple[dict[str, tuple], tuple]:
    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        result = funnel.report(SINCE, UNTIL, view=view, grouping=grouping, days=days)
    return {row.key: tuple(row.stages()) for row in result.rows}, tuple(result.total.stages())


#                 scans follows members visits paying sales_fen
CAMPAIGN_TOTAL = (4, 3, 2, 5, 7, 122_000)
# scans: A, D (spring), B, F (vip); D's L1-01 scan is D again: 4 distinct. follows: A, D, F.
# members: A, F. visits: A, B, E, H (payments at counters), F (check-in and payment): 5.
# paying: A B C E F G H: 7. sales: 300+200+100+80+(500-200)+120+50+70 = 1220.00 yuan.


def test_last_touch_by_campaign(app, week):
    rows, total = table(app, "last", "campaign")
    assert rows == {
        # D scanned the counter code L1-01 (a scene is a campaign); nothing downstream.
        "L1-01": (1, 0, 0, 0, 0, 0),
        # scans A, D; follows A, D; A's card (11-02 11:00) and A's payment (11-03) both follow A's
        # spring follow (11-02 10:00, as openid oA = mA) within 7 days: 1 member, 1 visit, 1 payer,
        # 300.00.
        "c-spring": (2, 2, 1, 1, 1, 30_000),
        # scans B, F; follows F; F's card; visits B (paid at L2-05; vip scan 11-04 is the last
        # touch, the spring scan of 10-20 is outside the window) and F; payers B, F and G (G's
        # order came from c-vip: the payment is its own last touch):
        # 200.00 + (500.00 - 200.00 refunded) + 120.00 = 620.00.
        "c-vip": (2, 1, 1, 2, 3, 62_000),
        # C's only touch (10-25) is 12 days before the payment: unattributed; E and H never
        # touched a campaign. visits E, H (C paid in the mini-program); payers C, E, H:
        # 100.00 + 80.00 + 50.00 + 70.00 = 300.00.
        "": (0, 0, 0, 2, 3, 30_000),
    }
    assert total == CAMPAIGN_TOTAL


def test_first_touch_by_campaign(app, week):
    rows, total = table(app, "first", "campaign")
    assert rows == {
        "L1-01": (1, 0, 0, 0, 0, 0),
        # B's first campaign touch is the spring scan of 10-20, with no window in this view:
        # visits A, B; payers A, B: 300.00 + 200.00 = 500.00.
        "c-spring": (2, 2, 1, 2, 2, 50_000),
        # C's first touch is c-vip (10-25): payers C, F, G: 100.00 + 300.00 + 120.00 = 520.00;
        # visits F only (C paid in the mini-program, B went to spring).
        "c-vip": (2, 1, 1, 1, 3, 52_000),
        # E and H: 80.00 + 50.00 + 70.00 = 200.00.
        "": (0, 0, 0, 2, 2, 20_000),
    }
    assert total == CAMPAIGN_TOTAL


def test_last_touch_by_brand(app, week):
    rows, total = table(app, "last", "brand")
    b1, b2 = str(week["L1-01"]), str(week["L2-05"])
    assert rows == {
        # D's scan of L1-01's code; visits and payers A, E, H at B1: 300.00 + 80.00 + 50.00.
        b1: (1, 0, 0, 3, 3, 43_000),
        # B, F (check-in and payment at L2-05) and H's second payment: 200.00 + 300.00 + 70.00.
        b2: (0, 0, 0, 3, 3, 57_000),
        # A's and F's cards come before any brand touch of theirs; C (mini-program) and G (online)
        # paid with no brand: 100.00 + 120.00.
        "": (0, 0, 2, 0, 2, 22_000),
    }
    # Only D's scan carried a brand; follows none. Downstream as by campaign.
    assert total == (1, 0, 2, 5, 7, 122_000)


def test_first_touch_by_brand(app, week):
    rows, total = table(app, "first", "brand")
    b1, b2 = str(week["L1-01"]), str(week["L2-05"])
    assert rows == {
        # H's first brand touch is B1 (11-03): H's 70.00 at L2-05 goes to B1 too:
        # 300.00 + 80.00 + 50.00 + 70.00.
        b1: (1, 0, 0, 3, 3, 50_000),
        # B and F: 200.00 + 300.00.
        b2: (0, 0, 0, 2, 2, 50_000),
        "": (0, 0, 2, 0, 2, 22_000),
    }
    assert total == (1, 0, 2, 5, 7, 122_000)


def test_a_longer_window_reaches_the_touch_that_was_outside_it(app, week):
    """With 14 days, C's vip scan (12 days before the payment) is inside: C moves to c-vip."""
    rows, _ = table(app, "last", "campaign", days=14)
    assert rows["c-vip"] == (2, 1, 1, 2, 4, 72_000)  # payers B, C, F, G: 620.00 + 100.00
    assert rows[""] == (0, 0, 0, 2, 2, 20_000)  # E, H


def test_conversion_rates_are_each_stage_over_the_one_before(app, week):
    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        result = funnel.report(SINCE, UNTIL, view="last", grouping="campaign")
    spring = next(r for r in result.rows if r.key == "c-spring")
    assert spring.label == "c-spring"  # no QR code row names it
    # 2 follows / 2 scans, 1 member / 2 follows, 1 visit / 1 member, 1 payer / 1 visit, 1 / 2 scans.
    assert spring.rates() == {"follows": 100.0, "members": 50.0, "visits": 100.0, "paying": 100.0, "overall": 50.0}
    unattributed = result.rows[-1]
    assert unattributed.key == "" and unattributed.rates()["follows"] is None  # no scans: no rate


def test_a_retried_push_records_its_touches_once(app):
    with uow(app):
        touches.record_push("oX", 1_700_000_000, "c-spring", follow=True)
        touches.record_push("oX", 1_700_000_000, "c-spring", follow=True)
    with app.app_context(), app.extensions["wx"].db.unit_of_work():
        result = funnel.report(date(2023, 11, 14), date(2023, 11, 15), view="last", grouping="campaign")
    assert [(r.key, r.scans, r.follows) for r in result.rows] == [("c-spring", 1, 1)]
