"""What the console's refund page reads: one order's money (paid, refunded, in flight, left to
refund) with each refund and its state, and today's paid orders to pick from at the till.

Reads only; the refund itself is payments.jobs.request_refund (audited, idempotent by
out_refund_no). "Left" is what decide_refund would still allow: the paid amount minus every
refund still holding money (PROCESSING, SUCCESS, ABNORMAL), so the page and the rule agree.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from payments import money, states
from payments import refunds as rules
from payments.models import Order, Refund
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db
from wx_service.ground.logs import mask_openid

SHANGHAI = timezone(timedelta(hours=8))
TODAY_LIMIT = 20  # a short list: the till picks from the latest few, anything older is searched
# What a refund-page form may carry as its refund number: the R… numbers jobs.new_refund_no makes.
REFUND_NO = re.compile(r"R[0-9]{14}[0-9]{8}")
PAID_STATES = tuple(s.value for s in states.PAID_FAMILY)

STATUS_LABELS = {"PROCESSING": "退款中", "SUCCESS": "退款成功", "CLOSED": "退款关闭", "ABNORMAL": "退款异常"}


def _local(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _refund_view(row: Refund) -> dict[str, Any]:
    return {"out_refund_no": row.out_refund_no, "amount_fen": row.amount_fen,
            "amount": money.format_fen(row.amount_fen), "status": row.status,
            "status_zh": STATUS_LABELS.get(row.status, row.status), "reason": row.reason,
            "requested_local": _local(row.created_at), "succeeded_local": _local(row.succeeded_at),
            "needs_reconcile": row.needs_reconcile}


def sheet(out_trade_no: str) -> dict[str, Any] | None:
    """The order as the refund page shows it, or None when there is no such order. Flush-free."""
    order = db.session.scalar(select(Order).where(Order.out_trade_no == out_trade_no[:32])
                              .execution_options(populate_existing=True))
    if order is None:
        return None
    rows = list(db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
                                   .execution_options(populate_existing=True)))
    paid = states.State(order.state) in states.PAID_FAMILY
    paid_fen = order.amount_fen if paid else 0
    as_rules = [rules.Refund(r.out_refund_no, r.amount_fen, rules.RefundStatus(r.status)) for r in rows]
    refunded = rules.refunded_fen(as_rules)
    committed = rules.committed_fen(as_rules)
    left = max(paid_fen - committed, 0)
    return {"out_trade_no": order.out_trade_no, "state": order.state, "paid": paid, "kind": order.kind,
            "description": order.description, "counter": order.counter,
            "amount_fen": order.amount_fen, "amount": money.format_fen(order.amount_fen),
            "paid_local": _local(order.paid_at),
            "payer": mask_openid(order.payer_openid) if paid and order.payer_openid else "",
            "refunded_fen": refunded, "refunded": money.format_fen(refunded),
            "in_flight_fen": committed - refunded, "in_flight": money.format_fen(committed - refunded),
            "left_fen": left, "left": money.format_fen(left),
            "settling": any(r.status in ("PROCESSING", "ABNORMAL") for r in rows),
            "needs_reconcile": order.needs_reconcile,
            "refunds": [_refund_view(r) for r in rows]}


def todays_paid(limit: int = TODAY_LIMIT, now: datetime | None = None) -> list[dict[str, Any]]:
    """Orders paid since midnight in Shanghai (the store's day), newest first, at most `limit`."""
    local = (now or utcnow()).astimezone(SHANGHAI)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    rows = db.session.scalars(select(Order).where(Order.state.in_(PAID_STATES), Order.paid_at >= midnight)
                              .order_by(Order.paid_at.desc(), Order.id.desc()).limit(limit))
    return [{"out_trade_no": o.out_trade_no, "amount": money.format_fen(o.amount_fen), "state": o.state,
             "counter": o.counter, "description": o.description, "paid_local": _local(o.paid_at)} for o in rows]


def refund_exists(out_refund_no: str) -> bool:
    """Whether this refund number was used already (a resubmitted form): for the page's words only;
    request_refund's own check under the order lock is what keeps it to one refund."""
    return db.session.scalar(select(Refund.id).where(Refund.out_refund_no == out_refund_no)) is not None
