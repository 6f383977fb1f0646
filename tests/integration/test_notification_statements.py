"""What a payment notification costs the database, and that the cheaper path still does the same.

A first TRANSACTION.SUCCESS for a member's order locks the order, finds and locks the member, adds
the spend and the ledger entry, moves the level if the 12-month spend says so and stores the
notification; a retry of the same notification only reads the order. The statements are counted
with SQLAlchemy's before_cursor_execute event (only this thread's: the live server and the job
queue share the engine) and printed; the test asserts what a shopper or WeChat would notice and
that the retry costs less than the first, never an exact count.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import event, select

from members.models import LevelChange, Member, PointsEntry, SpendRecord
from payments.models import PaymentTransaction
from tests.integration.members_helpers import assert_ledger_consistent, balance, uow
from tests.integration.test_pay_notify import (  # noqa: F401  (keys, pay: fixtures)
    envelope,
    keys,
    make_order,
    make_shopper,
    order_row,
    pay,
    payment_entries,
    signed_headers,
    transaction,
)
from wx_service.ground.db import utcnow


@contextlib.contextmanager
def statements(app) -> Iterator[list[str]]:
    """The SQL statements this thread sends while the block runs."""
    engine = app.extensions["wx"].db.engine
    me = threading.get_ident()
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if threading.get_ident() == me:
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def notify(app, keys, body: bytes) -> int:
    """POST /pay/notify in this thread (the app's test client), as WeChat sends it."""
    return app.test_client().post("/pay/notify", data=body,
                                  headers=signed_headers(keys["platform"], body)).status_code


def show(label: str, sent: list[str]) -> None:
    print(f"\n{label}: {len(sent)} statements")
    for sql in sent:
        print("   ", sql[:140])


def test_a_retry_costs_fewer_statements_than_the_first_notification_and_changes_nothing(app, pay, keys):
    member_id = make_shopper(app, "o-counted")
    make_order(app, "T-counted-1", 12_800)
    body = envelope(transaction("T-counted-1", 12_800, openid="o-counted"), "EV-counted-1")

    with statements(app) as first:
        assert notify(app, keys, body) == 204
    order = order_row(app, "T-counted-1")
    assert order.state == "PAID" and order.points_member_id == member_id
    awarded = payment_entries(app, "T-counted-1")
    assert [e.delta for e in awarded] == [128]
    assert balance(app, member_id) == 128

    with statements(app) as retry:
        assert notify(app, keys, body) == 204
    show("first notification", first)
    show("retry of the same notification", retry)

    assert 0 < len(retry) < len(first)
    assert [e.id for e in payment_entries(app, "T-counted-1")] == [awarded[0].id]
    assert balance(app, member_id) == 128
    with uow(app) as session:
        assert len(session.scalars(select(PaymentTransaction)).all()) == 1
        assert len(session.scalars(select(SpendRecord).where(SpendRecord.member_id == member_id)).all()) == 1
    assert_ledger_consistent(app, member_id)


def test_a_notification_for_a_paid_order_under_a_new_id_is_stored_without_points(app, pay, keys):
    member_id = make_shopper(app, "o-copy")
    make_order(app, "T-copy-1", 5_000)
    assert notify(app, keys, envelope(transaction("T-copy-1", 5_000, openid="o-copy"), "EV-copy-1")) == 204
    with statements(app) as copy:
        assert notify(app, keys, envelope(transaction("T-copy-1", 5_000, openid="o-copy"), "EV-copy-2")) == 204
    show("late copy under another id", copy)
    assert [e.delta for e in payment_entries(app, "T-copy-1")] == [50]
    with uow(app) as session:
        assert len(session.scalars(select(PaymentTransaction)).all()) == 2
    assert_ledger_consistent(app, member_id)


def test_the_notification_sets_the_level_the_12_months_of_spend_give(app, pay, keys):
    """The award reads the spend before its own under the member's lock and adds its own: the
    level must be what the database's sum gives, up across a threshold and down when old spend
    has left the window."""
    rising = make_shopper(app, "o-rising")  # 4,990 yuan this year: silver, 10 yuan short of gold
    falling = make_shopper(app, "o-falling")  # gold from 6,000 yuan spent 13 months ago
    now = utcnow()
    with uow(app) as session:
        session.get(Member, falling).level = "gold"
        session.add_all([
            SpendRecord(member_id=rising, amount_fen=499_000, occurred_at=now - timedelta(days=30),
                        source_key="spend:seed-rising", ref_key="seed-rising"),
            SpendRecord(member_id=falling, amount_fen=600_000, occurred_at=now - timedelta(days=400),
                        source_key="spend:seed-falling", ref_key="seed-falling")])
    make_order(app, "T-rising", 1_000)
    make_order(app, "T-falling", 1_000)
    assert notify(app, keys, envelope(transaction("T-rising", 1_000, openid="o-rising"))) == 204
    assert notify(app, keys, envelope(transaction("T-falling", 1_000, openid="o-falling"))) == 204

    with uow(app) as session:
        assert session.get(Member, rising).level == "gold"
        assert session.get(Member, falling).level == "silver"
        changes = {c.member_id: (c.from_level, c.to_level, c.spend_fen)
                   for c in session.scalars(select(LevelChange))}
        assert changes == {rising: ("silver", "gold", 500_000), falling: ("gold", "silver", 1_000)}
        # Points at the level held when paying: 10 yuan at silver, 10 yuan at gold (x1.2).
        earned = dict(session.execute(select(PointsEntry.member_id, PointsEntry.delta)
                                      .where(PointsEntry.reason == "payment")).all())
        assert earned == {rising: 10, falling: 12}
