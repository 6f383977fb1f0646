"""Queueing a message to a shopper about a reservation: one row per (subject, kind), inserted in a
savepoint (a second insert of the same kind is dropped by the unique key), and the send job queued
after commit. What the message says and which channel carries it is jobs.py's business."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from reservations.models import Notice
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit

SEND_JOB = "reservations.jobs.send_notice"


def queue(subject: str, kind: str, openid: str, *, now: datetime | None = None) -> Notice | None:
    """Queue one notice; None when this subject already had one of this kind (sent or not)."""
    try:
        with db.session.begin_nested():
            notice = add(subject, kind, openid, now=now)
    except IntegrityError:
        return None
    send_after_commit(notice)
    return notice


def add(subject: str, kind: str, openid: str, *, now: datetime | None = None) -> Notice:
    """The notice's row alone, for a subject that cannot have one of this kind yet (a booking
    being made): no savepoint. The caller queues the send with send_after_commit once the row is
    sure to stay (outside any savepoint that may still roll back)."""
    notice = Notice(subject=subject, kind=kind, openid=openid, status="pending", created_at=now or utcnow())
    db.session.add(notice)
    db.session.flush()
    return notice


def send_after_commit(notice: Notice) -> None:
    enqueue_after_commit(SEND_JOB, notice_id=notice.id)


def of(subject: str) -> list[Notice]:
    return list(db.session.scalars(select(Notice).where(Notice.subject == subject).order_by(Notice.id)))
