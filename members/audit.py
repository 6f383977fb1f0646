"""The audit log of staff writes: who, what, when, and the before/after where it matters.

`record` appends one `AuditEntry` and flushes in the caller's unit of work, so the entry commits
with the write it describes and a rolled-back write leaves none. Nothing here (or anywhere) updates
or deletes an entry; the database refuses to (migration 0011's triggers). It lives in members, the
lowest domain package, so every domain package and edge can call it.

Actions are dotted nouns and verbs, searched by prefix ("points." finds every points action):
points.adjust, points.approve, points.reject (members.points); coupon.redeem (members.coupons);
role.grant, role.revoke, staff.add, staff.password, staff.deactivate, staff.activate
(members.staff, shared by the CLI and the console's staff page); role.desk_agent
(service_desk.roster.add_agent); refund.request (payments.jobs.request_refund,
for the console's refund page and `pay refund`); order.create, order.cancel (payments.counter /
payments.cashier); desk.phone_reveal (service_desk.panel); reservation.check_in / .confirm /
.decline / .cancel (reservations.bookings), .hold_visited / .hold_confirm / .hold_cancel
(reservations.holds), .variant_quantity / .variant_import (reservations.catalog). Each is recorded
by the domain verb that makes the change, given the acting `staff_id`, right after the change's
own compare-and-swap. content.<noun>.create / .update for noun store, brand, activity, new_arrival, discount (with the
changed fields' before/after; a store's hours exception is content.store.update under
"hours <day>"), content.image.create, and content.<noun>.publish / .schedule / .unpublish for the
published nouns (marketing.publishing; the scheduler's own moves carry detail "scheduler"); announcement.create
(brand news announced in the console, marketing.announcements).
Subjects name the thing written: "member:12", "adjustment:3", "coupon:4", "order:N…", "booking:5",
"hold:7", "variant:9", "variants:csv", "staff:4", "activity:7", "store:2", "image:5",
"announcement:2". A repeat that
changes nothing (an idempotent grant, a second check-in) records nothing.

A write with no staff member behind it (a CLI run without --staff) is recorded with staff_id NULL
and detail "cli".
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, select

from members.ledger import SHANGHAI
from members.models import AuditEntry, Staff
from wx_service.ground.extensions import db

CLI = "cli"
MAX_DETAIL = 2000


def record(staff_id: int | None, action: str, subject: str, before: Any = None, after: Any = None,
           detail: str = "") -> AuditEntry:
    """Append one entry (in the caller's unit of work). Flushes."""
    if not action or len(action) > 48:
        raise ValueError("an audit action is 1-48 characters")
    entry = AuditEntry(staff_id=staff_id, action=action, subject=(subject or "")[:96], before=before, after=after,
                       detail=(detail or "")[:MAX_DETAIL])
    db.session.add(entry)
    db.session.flush()
    return entry


# -- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What the console searches by. Dates are store days (Asia/Shanghai), both ends included."""

    staff: str = ""          # a username, exactly; "cli" for entries with no staff member
    action: str = ""         # a prefix: "points." or "points.adjust"
    subject: str = ""        # exactly ("member:12"), or a prefix ending in ":" or "*" ("order:", "order:N2*")
    since: date | None = None
    until: date | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def store_day_start(day: date) -> datetime:
    """The UTC instant a store day begins."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(timezone.utc)


def _query(filters: Filters) -> Select:
    query = select(AuditEntry, Staff.username).outerjoin(Staff, Staff.id == AuditEntry.staff_id)
    if filters.staff:
        if filters.staff == CLI:
            query = query.where(AuditEntry.staff_id.is_(None))
        else:
            query = query.where(Staff.username == filters.staff)
    if filters.action:
        query = query.where(AuditEntry.action.like(_escape_like(filters.action) + "%", escape="\\"))
    if filters.subject:
        subject = filters.subject
        if subject.endswith("*"):
            query = query.where(AuditEntry.subject.like(_escape_like(subject[:-1]) + "%", escape="\\"))
        elif subject.endswith(":"):
            query = query.where(AuditEntry.subject.like(_escape_like(subject) + "%", escape="\\"))
        else:
            query = query.where(AuditEntry.subject == subject)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= store_day_start(filters.since))
    if filters.until is not None:
        query = query.where(AuditEntry.at < store_day_start(filters.until + timedelta(days=1)))
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


@dataclass(frozen=True)
class Row:
    entry: AuditEntry
    username: str | None

    @property
    def who(self) -> str:
        return self.username if self.username is not None else CLI


def page(filters: Filters, number: int = 1, size: int = 50) -> tuple[list[Row], bool]:
    """One page of entries, newest first, and whether there is a next page."""
    number = max(1, number)
    rows = db.session.execute(_query(filters).offset((number - 1) * size).limit(size + 1)).all()
    return [Row(entry, username) for entry, username in rows[:size]], len(rows) > size


def iter_rows(filters: Filters, batch: int = 500) -> Iterator[Row]:
    """Every matching entry, newest first, fetched in batches (for the CSV export)."""
    result = db.session.execute(_query(filters).execution_options(yield_per=batch))
    for entry, username in result:
        yield Row(entry, username)


# -- CSV -------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "at (Asia/Shanghai)", "staff", "action", "subject", "before", "after", "detail")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting = + - @ (or tab / CR) gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def json_text(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def local_time(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def csv_cells(row: Row) -> list[str]:
    entry = row.entry
    return [safe_cell(v) for v in (entry.id, local_time(entry.at), row.who, entry.action, entry.subject,
                                    json_text(entry.before), json_text(entry.after), entry.detail)]


def csv_lines(rows: Iterator[Row]) -> Iterator[str]:
    """The header and one CSV line per entry, as text chunks (streamed by the console)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take(cells) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield take(CSV_COLUMNS)
    for row in rows:
        yield take(csv_cells(row))
