"""Helpers shared by the membership tests: a member, a staff member, the ledger invariant."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from members.models import Member, MemberIdentity, PointsEntry, Staff
from wx_service.ground.db import utcnow


@contextlib.contextmanager
def uow(app) -> Iterator:
    """One app context and one committed transaction, as a job or request has."""
    with app.app_context():
        wx = app.extensions["wx"]
        with wx.db.unit_of_work() as session:
            yield session


def make_member(app, *, level: str = "silver", name: str = "", birthday: date | None = None,
                joined_at: datetime | None = None, oa_openid: str | None = None) -> int:
    with uow(app) as session:
        member = Member(level=level, name=name, birthday=birthday, joined_at=joined_at or utcnow())
        session.add(member)
        session.flush()
        if oa_openid:
            session.add(MemberIdentity(member_id=member.id, kind="oa", openid=oa_openid))
        return member.id


def make_staff(app, username: str, password: str = "") -> int:
    """A staff member (with `password`, one who can sign in), made as a fixture: no audit entry, so
    tests that read the audit log see only what they did."""
    with uow(app) as session:
        staff = Staff(username=username, name=username.title(),
                      password_hash=generate_password_hash(password) if password else "")
        session.add(staff)
        session.flush()
        return staff.id


def balance(app, member_id: int) -> int:
    with uow(app) as session:
        return session.get(Member, member_id).points_balance


def entries(app, member_id: int) -> list[PointsEntry]:
    with uow(app) as session:
        return list(session.scalars(select(PointsEntry).where(PointsEntry.member_id == member_id)
                                    .order_by(PointsEntry.id)))


def assert_ledger_consistent(app, member_id: int) -> int:
    """balance == sum of deltas == last balance_after; every running balance >= 0 and follows
    from the one before. Returns the balance."""
    with uow(app) as session:
        member = session.get(Member, member_id)
        rows = list(session.scalars(select(PointsEntry).where(PointsEntry.member_id == member_id)
                                    .order_by(PointsEntry.id)))
        total = int(session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                                   .where(PointsEntry.member_id == member_id)))
        running = 0
        for row in rows:
            running += row.delta
            assert row.balance_after == running >= 0, (row.id, row.source_key, row.balance_after, running)
        last = rows[-1].balance_after if rows else 0
        assert member.points_balance == total == last, (member.points_balance, total, last)
        return member.points_balance
