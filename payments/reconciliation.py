"""Daily reconciliation: WeChat Pay's trade bill for one Beijing day against our orders and refunds.

It reports, it never repairs: every disagreement becomes one ReconciliationDifference row with what
we have and what WeChat has (JSON), and nothing in pay_orders or pay_refunds changes. A person
looks and resolves it with a note (`resolve_difference`); the row stays. Each call makes a new
ReconciliationRun, so a re-run of a day is history next to the first one. Flush, never commit.

What is compared (bill by Beijing day; our times are UTC, converted):
* payments: the bill's SUCCESS rows against our orders paid that day (paid_at in Asia/Shanghai),
  and each bill row against our order of that out_trade_no whatever its date;
* refunds: the bill's REFUND rows against our refunds that succeeded that day, likewise.
Kinds: MISSING_OURS (WeChat has it, we have no record or hold it unpaid / not yet refunded),
MISSING_WECHAT (we hold it paid / refunded, the bill does not), AMOUNT, STATE (we hold it closed,
reversed, or the refund failed, WeChat shows the money moved), TRANSACTION_ID (WeChat's id for
it differs), DATE (WeChat lists it on this day, we record it on another), and FLAGGED: an order
or refund of that day flagged needs_reconcile (a conflicting notification) that otherwise matches,
so the flag is seen.

WeChat's answers: the bill for day D is ready from 10:00 on D+1. Before that, NO_STATEMENT_EXIST
means "not yet" (BillNotReady, transient: the job is retried). After it, WeChat has no bill for a
day without trades: if we have none either, the day is MATCHED; if we do, we wait one more day
(BillNotReady) and then report ours as MISSING_WECHAT. A network or 5xx failure is transient too
(BillUnavailable). A bill that fails its SHA1, cannot be read or does not add up is a FAILED run
with the reason (returned, not raised, so that the edge commits it).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, Iterable

from sqlalchemy import func, or_, select

from payments import states
from payments.bill import EMPTY_BILL, SHANGHAI, BillFormatError, BillRow, TradeBill, parse_trade_bill
from payments.models import Order, ReconciliationDifference, ReconciliationRun, Refund
from payments.refunds import RefundStatus
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

log = logging.getLogger(__name__)

BILL_READY_AT = time(10, 0)  # WeChat's bill for day D is ready from 10:00 (Beijing) on D+1
NOT_YET = frozenset({"NO_STATEMENT_EXIST", "STATEMENT_CREATING"})
_CHUNK = 500  # out_trade_no values per IN (…) query


class Kind(str, Enum):
    MISSING_OURS = "MISSING_OURS"
    MISSING_WECHAT = "MISSING_WECHAT"
    AMOUNT = "AMOUNT"
    STATE = "STATE"
    TRANSACTION_ID = "TRANSACTION_ID"
    DATE = "DATE"
    FLAGGED = "FLAGGED"


class RunStatus(str, Enum):
    RUNNING = "RUNNING"
    MATCHED = "MATCHED"
    DIFFERENCES = "DIFFERENCES"
    FAILED = "FAILED"


class ReconciliationError(Exception):
    """A request the service refuses (unknown difference, already resolved, empty note)."""


class BillNotReady(Exception):
    """WeChat has no bill for the day yet: try again later (the job queue retries it)."""

    transient = True


class BillUnavailable(Exception):
    """WeChat or the network failed (5xx, timeout): the same download may simply be repeated."""

    transient = True


@dataclass(frozen=True)
class Finding:
    kind: Kind
    out_trade_no: str
    out_refund_no: str
    ours: dict[str, Any] | None
    wechat: dict[str, Any] | None


# -- dates ---------------------------------------------------------------------------------------

def parse_bill_date(bill_date: str) -> date:
    try:
        return datetime.strptime(bill_date, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise ValueError(f"bill date {bill_date!r} is not YYYY-MM-DD") from None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Beijing day as [start, end) instants (compared with UTC columns)."""
    start = datetime.combine(day, time(0), tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def bill_ready_at(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), BILL_READY_AT, tzinfo=SHANGHAI)


def beijing_yesterday(now: datetime | None = None) -> str:
    today = (now or utcnow()).astimezone(SHANGHAI).date()
    return (today - timedelta(days=1)).isoformat()


def _beijing(value: datetime | None) -> str | None:
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds") if value else None


def _on(value: datetime | None, day: date) -> bool:
    return value is not None and value.astimezone(SHANGHAI).date() == day


# -- what each side says -------------------------------------------------------------------------

def _order_view(order: Order) -> dict[str, Any]:
    return {"state": order.state, "amount_fen": order.amount_fen, "transaction_id": order.transaction_id,
            "paid_at": _beijing(order.paid_at), "appid": order.appid, "kind": order.kind,
            "needs_reconcile": order.needs_reconcile}


def _refund_view(refund: Refund, out_trade_no: str) -> dict[str, Any]:
    return {"status": refund.status, "amount_fen": refund.amount_fen, "refund_id": refund.refund_id,
            "out_trade_no": out_trade_no, "succeeded_at": _beijing(refund.succeeded_at),
            "needs_reconcile": refund.needs_reconcile}


def _row_view(row: BillRow) -> dict[str, Any]:
    view: dict[str, Any] = {"line": row.line, "trade_state": row.trade_state,
                            "trade_time": row.trade_time.isoformat(timespec="seconds"),
                            "appid": row.appid}
    if row.is_refund:
        view.update(amount_fen=row.requested_refund_fen, refund_fen=row.refund_fen,
                    refund_status=row.refund_status, refund_id=row.refund_id,
                    out_trade_no=row.out_trade_no)
    else:
        view.update(amount_fen=row.order_fen, settlement_fen=row.settlement_fen,
                    transaction_id=row.transaction_id, trade_type=row.trade_type)
    return view


# -- the comparison (pure) ------------------------------------------------------------------------

def compare(bill: TradeBill, day: date, orders: Iterable[Order],
            refunds: Iterable[tuple[Refund, str]]) -> list[Finding]:
    """Every difference between the bill and our rows. `orders`: ours paid that day, on the bill
    or flagged that day; `refunds`: (refund, its out_trade_no) likewise. Reads, never writes."""
    findings: list[Finding] = []
    by_no = {o.out_trade_no: o for o in orders}
    on_bill = bill.payments
    for no, row in on_bill.items():
        order, wechat = by_no.get(no), _row_view(row)
        if order is None:
            findings.append(Finding(Kind.MISSING_OURS, no, "", None, wechat))
            continue
        ours, state = _order_view(order), states.State(order.state)
        found: list[Kind] = []
        if state in states.UNPAID:
            found.append(Kind.MISSING_OURS)
        elif state in states.ENDED_UNPAID:
            found.append(Kind.STATE)
        if order.amount_fen != row.order_fen:
            found.append(Kind.AMOUNT)
        if state in states.PAID_FAMILY:
            if order.transaction_id != row.transaction_id:
                found.append(Kind.TRANSACTION_ID)
            if not _on(order.paid_at, day):
                found.append(Kind.DATE)
        if not found and order.needs_reconcile:
            found.append(Kind.FLAGGED)
        findings.extend(Finding(kind, no, "", ours, wechat) for kind in found)
    for no, order in by_no.items():
        if no in on_bill:
            continue
        if _on(order.paid_at, day):
            findings.append(Finding(Kind.MISSING_WECHAT, no, "", _order_view(order), None))
        elif order.needs_reconcile:
            findings.append(Finding(Kind.FLAGGED, no, "", _order_view(order), None))

    by_refund = {r.out_refund_no: (r, trade_no) for r, trade_no in refunds}
    refunds_on_bill = bill.refunds
    for refund_no, row in refunds_on_bill.items():
        wechat = _row_view(row)
        if refund_no not in by_refund:
            findings.append(Finding(Kind.MISSING_OURS, row.out_trade_no, refund_no, None, wechat))
            continue
        refund, trade_no = by_refund[refund_no]
        ours, status = _refund_view(refund, trade_no), RefundStatus(refund.status)
        found = []
        if status is RefundStatus.PROCESSING:
            found.append(Kind.MISSING_OURS)
        elif status is not RefundStatus.SUCCESS or trade_no != row.out_trade_no:
            found.append(Kind.STATE)
        if refund.amount_fen != row.requested_refund_fen:
            found.append(Kind.AMOUNT)
        if status is RefundStatus.SUCCESS:
            if refund.refund_id != row.refund_id:
                found.append(Kind.TRANSACTION_ID)
            if not _on(refund.succeeded_at, day):
                found.append(Kind.DATE)
        if not found and refund.needs_reconcile:
            found.append(Kind.FLAGGED)
        findings.extend(Finding(kind, row.out_trade_no, refund_no, ours, wechat) for kind in found)
    for refund_no, (refund, trade_no) in by_refund.items():
        if refund_no in refunds_on_bill:
            continue
        if _on(refund.succeeded_at, day) and refund.status == RefundStatus.SUCCESS.value:
            findings.append(Finding(Kind.MISSING_WECHAT, trade_no, refund_no,
                                    _refund_view(refund, trade_no), None))
        elif refund.needs_reconcile:
            findings.append(Finding(Kind.FLAGGED, trade_no, refund_no,
                                    _refund_view(refund, trade_no), None))
    return findings


# -- our side from the database ------------------------------------------------------------------

def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def _our_orders(day: date, bill: TradeBill) -> list[Order]:
    start, end = day_bounds(day)
    found = {o.id: o for o in db.session.scalars(select(Order).where(or_(
        (Order.paid_at >= start) & (Order.paid_at < end),
        Order.needs_reconcile.is_(True) & (Order.created_at >= start) & (Order.created_at < end))))}
    for chunk in _chunks(sorted(bill.payments)):
        for order in db.session.scalars(select(Order).where(Order.out_trade_no.in_(chunk))):
            found.setdefault(order.id, order)
    return sorted(found.values(), key=lambda o: o.id)


def _our_refunds(day: date, bill: TradeBill) -> list[tuple[Refund, str]]:
    start, end = day_bounds(day)
    base = select(Refund, Order.out_trade_no).join(Order, Refund.order_id == Order.id)
    found = {r.id: (r, no) for r, no in db.session.execute(base.where(or_(
        (Refund.succeeded_at >= start) & (Refund.succeeded_at < end),
        Refund.needs_reconcile.is_(True) & (Refund.created_at >= start) & (Refund.created_at < end))))}
    for chunk in _chunks(sorted(bill.refunds)):
        for refund, no in db.session.execute(base.where(Refund.out_refund_no.in_(chunk))):
            found.setdefault(refund.id, (refund, no))
    return [found[k] for k in sorted(found)]


def _our_count(day: date, orders: list[Order], refunds: list[tuple[Refund, str]]) -> int:
    """Our rows for the day: orders paid and refunds succeeded on it (what the bill should list)."""
    return (sum(1 for o in orders if _on(o.paid_at, day))
            + sum(1 for r, _ in refunds if _on(r.succeeded_at, day) and r.status == RefundStatus.SUCCESS.value))


def _have_rows(day: date) -> bool:
    start, end = day_bounds(day)
    paid = db.session.scalar(select(func.count(Order.id)).where(
        (Order.paid_at >= start) & (Order.paid_at < end)))
    refunded = db.session.scalar(select(func.count(Refund.id)).where(
        (Refund.succeeded_at >= start) & (Refund.succeeded_at < end)))
    return bool(paid or refunded)


# -- the run -------------------------------------------------------------------------------------

def _download(bill_date: str) -> tuple[bytes | None, str | None, str]:
    """(content, failure, code): the bill's bytes, or why it is refused for good, or the 'not yet'
    code. Transient failures raise BillUnavailable. Runs before any query: no row is locked."""
    from flask import current_app

    from payments.config import current_payment_config
    from payments.exceptions import WxPayError
    from payments.gateway import BillRefused, WxPayApiError

    gateway = current_payment_config().gateway(current_app.extensions["wx"].settings.WECHAT_APPID)
    try:
        return gateway.trade_bill(bill_date), None, ""
    except BillRefused as exc:  # hash mismatch, another host, unknown hash type
        return None, f"bill refused: {exc}", ""
    except WxPayApiError as exc:
        if exc.code in NOT_YET:
            return None, None, exc.code
        if exc.retryable:
            raise BillUnavailable(f"bill download failed, will retry: {exc}") from exc
        return None, f"bill download refused: {exc}", ""
    except WxPayError as exc:  # the answer's signature did not verify
        return None, f"bill answer not trusted: {exc}", ""


def _finish(run: ReconciliationRun, status: RunStatus, error: str = "") -> ReconciliationRun:
    run.status, run.error, run.finished_at = status.value, error, utcnow()
    db.session.flush()
    level = logging.ERROR if status is RunStatus.FAILED else (
        logging.WARNING if status is RunStatus.DIFFERENCES else logging.INFO)
    log.log(level, "reconciliation %s: %s", run.bill_date, status.value,
            extra={"bill_date": run.bill_date, "differences": run.differences, "error": error})
    return run


def _carried_resolution(run: ReconciliationRun, finding: Finding, ours: str, wechat: str) -> ReconciliationDifference | None:
    """The same difference already resolved in an earlier run of this day: its resolution holds."""
    return db.session.scalar(
        select(ReconciliationDifference).join(ReconciliationRun,
                                              ReconciliationDifference.run_id == ReconciliationRun.id)
        .where(ReconciliationRun.bill_date == run.bill_date, ReconciliationRun.id != run.id,
               ReconciliationDifference.kind == finding.kind.value,
               ReconciliationDifference.out_trade_no == finding.out_trade_no,
               ReconciliationDifference.out_refund_no == finding.out_refund_no,
               ReconciliationDifference.ours == ours, ReconciliationDifference.wechat == wechat,
               ReconciliationDifference.resolved_at.is_not(None))
        .order_by(ReconciliationDifference.id.desc()).limit(1))


def _dump(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def reconcile_day(bill_date: str, *, now: datetime | None = None) -> ReconciliationRun:
    """Download the bill for `bill_date` (YYYY-MM-DD, Beijing) and record one run with its
    differences. Returns the run (FAILED ones too); raises BillNotReady / BillUnavailable
    (transient, nothing written) and ValueError for a malformed date."""
    day = parse_bill_date(bill_date)
    now = now or utcnow()
    started = utcnow()
    content, failure, not_yet = _download(bill_date)  # before any query: no lock is held
    run = ReconciliationRun(bill_date=bill_date, status=RunStatus.RUNNING.value, started_at=started)
    if failure is not None:
        db.session.add(run)
        return _finish(run, RunStatus.FAILED, failure)
    if content is None:
        if now < bill_ready_at(day):
            raise BillNotReady(f"WeChat's bill for {bill_date} is ready from "
                               f"{bill_ready_at(day):%Y-%m-%d %H:%M} Beijing time ({not_yet})")
        if _have_rows(day) and now < bill_ready_at(day) + timedelta(days=1):
            raise BillNotReady(f"WeChat has no bill for {bill_date} yet ({not_yet}) though we "
                               "hold payments or refunds that day; trying again later")
        bill = EMPTY_BILL  # after the ready time: WeChat lists no trades that day
    else:
        try:
            bill = parse_trade_bill(content, bill_date=bill_date)
        except BillFormatError as exc:
            db.session.add(run)
            return _finish(run, RunStatus.FAILED, f"bill unreadable: {exc}")

    from payments.config import current_payment_config

    mchid = current_payment_config().mchid
    stranger = next((r for r in bill.rows if r.mchid != mchid), None)
    db.session.add(run)
    if stranger is not None:
        return _finish(run, RunStatus.FAILED, f"bill unreadable: line {stranger.line} is for merchant "
                                              f"{stranger.mchid}, not {mchid}")
    db.session.flush()
    orders, refunds = _our_orders(day, bill), _our_refunds(day, bill)
    findings = compare(bill, day, orders, refunds)
    for finding in findings:
        ours, wechat = _dump(finding.ours), _dump(finding.wechat)
        row = ReconciliationDifference(run_id=run.id, kind=finding.kind.value,
                                       out_trade_no=finding.out_trade_no,
                                       out_refund_no=finding.out_refund_no, ours=ours, wechat=wechat)
        earlier = _carried_resolution(run, finding, ours, wechat)
        if earlier is not None:
            row.resolved_at = utcnow()
            row.resolution = f"as resolved in run {earlier.run_id}: {earlier.resolution}"
        db.session.add(row)
    run.wechat_rows = len(bill.rows)
    run.our_rows = _our_count(day, orders, refunds)
    run.differences = len(findings)
    return _finish(run, RunStatus.DIFFERENCES if findings else RunStatus.MATCHED)


def reconcile_yesterday() -> int:
    """The scheduled job (after 10:00 Beijing, when WeChat's bill of yesterday is ready): one run
    for yesterday in Beijing time. Returns the run id; BillNotReady/BillUnavailable are retried."""
    run = reconcile_day(beijing_yesterday())
    return run.id


# -- people --------------------------------------------------------------------------------------

def resolve_difference(difference_id: int, note: str, staff_id: int | None = None) -> ReconciliationDifference:
    """Mark one difference resolved with a note saying what was done; the row stays."""
    note = (note or "").strip()
    if not note:
        raise ReconciliationError("a note saying how it was resolved is required")
    difference = db.session.get(ReconciliationDifference, difference_id,
                                with_for_update=True, populate_existing=True)
    if difference is None:
        raise ReconciliationError(f"no difference {difference_id}")
    if difference.resolved_at is not None:
        raise ReconciliationError(f"difference {difference_id} is already resolved: {difference.resolution}")
    if staff_id is not None:
        from members.models import Staff

        staff = db.session.get(Staff, staff_id)
        if staff is None:
            raise ReconciliationError(f"no staff member {staff_id}")
        note = f"{note} (staff {staff.username})"
    difference.resolved_at = utcnow()
    difference.resolution = note
    db.session.flush()
    return difference


def latest_runs(bill_date: str | None = None) -> list[ReconciliationRun]:
    """The newest run of each day (or of `bill_date`), newest day first."""
    newest = select(func.max(ReconciliationRun.id)).group_by(ReconciliationRun.bill_date)
    query = select(ReconciliationRun).where(ReconciliationRun.id.in_(newest))
    if bill_date is not None:
        query = query.where(ReconciliationRun.bill_date == bill_date)
    return list(db.session.scalars(query.order_by(ReconciliationRun.bill_date.desc())))


def differences(*, open_only: bool = False, bill_date: str | None = None,
                run_id: int | None = None) -> list[tuple[ReconciliationDifference, ReconciliationRun]]:
    """Differences of one run, or of each day's newest run (older runs are history)."""
    if run_id is not None:
        run_ids = [run_id]
    else:
        run_ids = [r.id for r in latest_runs(bill_date)]
    query = (select(ReconciliationDifference, ReconciliationRun)
             .join(ReconciliationRun, ReconciliationDifference.run_id == ReconciliationRun.id)
             .where(ReconciliationDifference.run_id.in_(run_ids)))
    if open_only:
        query = query.where(ReconciliationDifference.resolved_at.is_(None))
    query = query.order_by(ReconciliationRun.bill_date.desc(), ReconciliationDifference.id)
    return [(d, r) for d, r in db.session.execute(query)]

