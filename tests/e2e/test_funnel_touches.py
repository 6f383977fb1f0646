"""The funnel's touches are recorded where they happen, once whatever the retries: a QR follow or
scan pushed by WeChat (and retried), a card claimed, a payment notified (and notified again), a
refund, a reservation booked and checked in, a coupon redeemed."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from marketing import service as marketing
from marketing.models import Brand, Touch
from members import coupons
from payments.models import Order
from reservations import bookings
from tests.e2e.test_cards import act, card_id, shopper  # noqa: F401  (fixtures)
from tests.e2e.test_webhook import event_fields, new_openid, post
from tests.integration.members_helpers import make_member, uow
from tests.integration.reservation_helpers import on_grid
from tests.integration.reservation_helpers import service as make_service
from tests.integration.test_notification_statements import show, statements
from tests.integration.test_pay_notify import (  # noqa: F401  (keys, pay: fixtures)
    envelope,
    keys,
    make_order,
    make_shopper,
    pay,
    refund_resource,
    send,
    transaction,
)
from wx_service.edges.emulator.shopper import build_push_xml, sign_and_wrap
from wx_service.ground.db import utcnow


def touches(app, *kinds: str) -> list[Touch]:
    with uow(app) as session:
        query = select(Touch).order_by(Touch.id)
        if kinds:
            query = query.where(Touch.kind.in_(kinds))
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def a_brand(app, counter: str, name: str = "Lanvin") -> int:
    with uow(app) as session:
        brand = Brand(name=name, counter_code=counter)
        session.add(brand)
        session.flush()
        return brand.id


def a_campaign(app, scene: str) -> None:
    with uow(app):
        marketing.save_qr_code(scene, "双十一 campaign", True, "ticket", "https://weixin.qq.com/q/x", None)


def test_a_retried_qr_follow_records_one_scan_and_one_follow(app, base_url, emulator):
    brand_id = a_brand(app, "counter-shoes-l3")
    openid, created = new_openid(), int(time.time())
    fields = event_fields(emulator, openid, "subscribe", "qrscene_counter-shoes-l3", Ticket="gQ", create_time=created)
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    assert {post(base_url, query, body).status_code for _ in range(3)} == {200}
    got = [(t.kind, t.key, t.openid, t.campaign, t.brand_id, t.member_id) for t in touches(app)]
    assert got == [("scan", f"{openid}:{created}", openid, "counter-shoes-l3", brand_id, None),
                   ("follow", f"{openid}:{created}", openid, "counter-shoes-l3", brand_id, None)]

    # The same shopper scans a campaign's code later (a SCAN event): one scan more, no brand.
    later = created + 60
    fields = event_fields(emulator, openid, "SCAN", "double11", Ticket="gQ", create_time=later)
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    assert post(base_url, query, body).status_code == 200
    assert [(t.kind, t.campaign, t.brand_id) for t in touches(app)][2:] == [("scan", "double11", None)]


def test_a_qr_follow_costs_one_statement_more_for_its_two_touches(app, emulator):
    """The webhook's budget (one Redis command, one statement for the push's record) is for the
    protocol work; a follow's domain work now adds one INSERT for the funnel (scan and follow in
    one statement, the brand found inside it), and no Redis command (touches live in Postgres)."""
    fields = event_fields(emulator, new_openid(), "subscribe", "qrscene_double11", Ticket="gQ")
    query, body = sign_and_wrap(emulator, build_push_xml(fields), "safe")
    with statements(app) as sent:
        assert app.test_client().post("/wechat", query_string=query, data=body).status_code == 200
    show("QR follow", sent)
    assert len([sql for sql in sent if sql.startswith("INSERT INTO touches")]) == 1
    assert [t.kind for t in touches(app)] == ["scan", "follow"]


def test_a_plain_follow_is_a_follow_without_a_campaign(app, base_url, emulator):
    openid = new_openid()
    query, body = sign_and_wrap(emulator, build_push_xml(event_fields(emulator, openid, "subscribe")), "safe")
    assert post(base_url, query, body).status_code == 200
    assert [(t.kind, t.campaign) for t in touches(app)] == [("follow", "")]


def test_claiming_the_card_is_the_member_touch_with_the_card_codes_campaign(app, wx, base_url, emulator, card_id,  # noqa: F811
                                                                            shopper):  # noqa: F811
    a_campaign(app, "counter-l2")
    code = act(base_url, "get_card", shopper, outer_str="counter-l2")["code"]
    [member] = touches(app, "member")
    assert (member.key, member.openid, member.campaign) == (f"card:{code}", shopper, "counter-l2")
    assert member.member_id is not None
    # Deleted and claimed again, the same code restored: still one member touch.
    act(base_url, "del_card", shopper)
    again = act(base_url, "get_card", shopper, outer_str="counter-l2")
    assert again["code"] == code
    assert [t.key for t in touches(app, "member")] == [f"card:{code}"]


def test_a_payment_is_one_touch_whatever_the_notifications_and_a_refund_names_it(app, base_url, pay, keys):  # noqa: F811
    member_id = make_shopper(app, "o-funnel")
    brand_id = a_brand(app, "L1-01")
    a_campaign(app, "double11")
    make_order(app, "T-funnel-1", 30_000)
    with uow(app) as session:
        order = session.scalar(select(Order).where(Order.out_trade_no == "T-funnel-1"))
        order.counter, order.source = "L1-01", "double11"
    body = envelope(transaction("T-funnel-1", 30_000, openid="o-funnel"), "EV-f1")
    assert send(base_url, keys, body).status_code == 204
    assert send(base_url, keys, body).status_code == 204  # WeChat's retry
    assert send(base_url, keys, envelope(transaction("T-funnel-1", 30_000, openid="o-funnel"), "EV-f2")).status_code == 204
    [paid] = touches(app, "payment")
    assert (paid.key, paid.member_id, paid.openid, paid.amount_fen, paid.counter, paid.brand_id, paid.campaign) == \
        ("T-funnel-1", member_id, "o-funnel", 30_000, "L1-01", brand_id, "double11")

    refund = envelope(refund_resource("T-funnel-1", "R-funnel-1", 30_000, 12_000), "EV-fr1", refund=True)
    assert send(base_url, keys, refund, path="/pay/refund-notify").status_code == 204
    assert send(base_url, keys, refund, path="/pay/refund-notify").status_code == 204
    [refunded] = touches(app, "refund")
    assert (refunded.key, refunded.ref, refunded.amount_fen, refunded.member_id) == \
        ("R-funnel-1", "T-funnel-1", 12_000, member_id)


def test_an_orders_source_that_is_not_a_campaign_gives_no_campaign(app, base_url, pay, keys):  # noqa: F811
    make_order(app, "T-funnel-2", 5_000)
    with uow(app) as session:
        session.scalar(select(Order).where(Order.out_trade_no == "T-funnel-2")).source = "cashier"
    assert send(base_url, keys, envelope(transaction("T-funnel-2", 5_000, openid="o-anyone"))).status_code == 204
    [paid] = touches(app, "payment")
    assert (paid.campaign, paid.member_id, paid.openid, paid.counter) == ("", None, "o-anyone", "")


def test_a_booking_and_its_check_in_are_touches_at_the_counters_brand(app):
    brand_id = a_brand(app, "LANCOME", "Lancôme")
    service_id, _ = make_service(app)
    member_id = make_member(app, oa_openid="o-booker")
    starts = on_grid(app, service_id)
    with uow(app):
        booking = bookings.book(service_id, starts, "o-booker", "k-1", member_id=member_id,
                                now=starts - timedelta(hours=3))
        bookings.book(service_id, starts, "o-booker", "k-1", member_id=member_id, now=starts - timedelta(hours=3))
        booking_id = booking.id
    with uow(app):
        bookings.check_in(booking_id, now=starts)
        bookings.check_in(booking_id, now=starts)  # a second scan of the code
    got = [(t.kind, t.key, t.member_id, t.brand_id, t.counter) for t in touches(app)]
    assert got == [("reservation", f"booking:{booking_id}", member_id, brand_id, ""),
                   ("check_in", f"booking:{booking_id}", member_id, brand_id, "LANCOME")]


def test_a_redeemed_coupon_is_a_touch(app):
    member_id = make_member(app)
    with uow(app):
        coupon, _ = coupons.issue(member_id, "birthday", "生日礼", 5_000, 30, "benefit:test")
        code = coupon.code
    with uow(app):
        marketing.redeem_coupon(code, None, now=utcnow())
    [redeemed] = touches(app, "coupon_redeem")
    assert redeemed.member_id == member_id and redeemed.key.startswith("coupon:")
