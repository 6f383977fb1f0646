"""The refund page (/console/refunds/): a cashier (or an admin) finds a paid order by its
out_trade_no, typed or scanned, or picks it from today's paid orders; sees what was paid, each
refund with its state, and what is left; and refunds part or all of it with a reason.

Thin edge over payments.jobs.request_refund, the same verb as `flask pay refund`: it records the
refund (PROCESSING), audits it as `refund.request` with the staff member, and sends it to WeChat
after commit. The amount is typed in yuan and parsed exactly to fen (payments.money). The form
carries its own refund number (out_refund_no, made when the page is drawn), so a form posted twice
(a double click, a browser resend) names the same refund and the domain keeps it to one. After a
refund the browser is sent back to the order (post/redirect/get) with a fresh number in the form.

The page polls /console/refunds/api/orders/<out_trade_no> every POLL_MS while a refund is still
settling, so it turns 退款成功 SUCCESS by itself when WeChat's refund notification arrives (whichever
worker handles it: the page reads the database).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from members.models import Staff
from members.staff import CASHIER
from payments import jobs, money, refund_desk, service
from payments.config import PaymentsOff, current_payment_config
from wx_service.edges.console.auth import roles
from wx_service.ground.extensions import db

bp = Blueprint("console_refunds", __name__, url_prefix="/console/refunds", template_folder="templates")

POLL_MS = 2000
MAX_FEN = 10**9  # a parse bound only; what may be refunded is the order's, decided by the domain


def _render(out_trade_no: str, *, error: str = "", done: str = "", amount: str = "", reason: str = "",
            status: int = 200) -> tuple[str, int]:
    """The order page, read in a unit of work of its own (also after a refusal rolled one back)."""
    with db.unit_of_work() as session:
        g.staff = session.get(Staff, g.staff_id)  # a rollback detached the signed-in row: read it again
        found = refund_desk.sheet(out_trade_no)
        if found is None:
            return render_template("console/refunds.html", order=None, today=refund_desk.todays_paid(),
                                   error=f"no order {out_trade_no[:32]} (没有这笔订单)", searched=out_trade_no[:32]), 404
        return render_template("console/refunds.html", order=found, today=[], error=error, done=done,
                               amount=amount, reason=reason, out_refund_no=jobs.new_refund_no(),
                               poll_ms=POLL_MS), status


@bp.get("/")
@roles(CASHIER)
def index():
    """Search (typed or scanned out_trade_no), or pick from today's paid orders."""
    wanted = (request.args.get("out_trade_no") or "").strip()
    if wanted:
        return redirect(url_for("console_refunds.order", out_trade_no=wanted[:32]))
    with db.unit_of_work():
        return render_template("console/refunds.html", order=None, today=refund_desk.todays_paid(), error="",
                               searched="")


@bp.get("/<out_trade_no>")
@roles(CASHIER)
def order(out_trade_no: str):
    return _render(out_trade_no, done=(request.args.get("done") or "")[:64])


@bp.post("/<out_trade_no>")
@roles(CASHIER)
def refund(out_trade_no: str):
    """Form: out_refund_no (the form's own), amount (yuan as typed), reason. 303 to the order on
    success (a resubmission of the same form lands there too, nothing new); the page again with the
    reason and 400/409 on a refusal, nothing written; 404 for an unknown order."""
    out_trade_no = out_trade_no[:32]
    amount_text = (request.form.get("amount") or "").strip()[:16]
    reason = (request.form.get("reason") or "").strip()
    number = (request.form.get("out_refund_no") or "").strip()

    def again(error: str, status: int) -> tuple[str, int]:
        return _render(out_trade_no, error=error, amount=amount_text, reason=reason[:80], status=status)

    with db.unit_of_work():
        found = refund_desk.sheet(out_trade_no)
        repeat = bool(refund_desk.REFUND_NO.fullmatch(number)) and refund_desk.refund_exists(number)
    if found is None:
        return _render(out_trade_no)
    if not refund_desk.REFUND_NO.fullmatch(number):
        return again("this form has no valid refund number: reload the page and try again (请刷新页面)", 400)
    if not found["paid"]:
        return again(f"this order is {found['state']}, not paid: there is nothing to refund (订单未支付，不能退款)", 409)
    try:
        amount_fen = money.parse_yuan(amount_text, max_fen=MAX_FEN)
    except money.AmountError as exc:
        return again(f"{exc} (金额格式不对)", 400)
    if not reason or len(reason) > 80:
        return again("say why (退款原因) in at most 80 characters: WeChat shows the reason to the shopper", 400)
    if not repeat and amount_fen > found["left_fen"]:
        return again(f"{money.format_fen(amount_fen)} yuan is more than is left to refund: at most {found['left']} yuan "
                     f"(超过可退金额，最多可退 {found['left']} 元)", 400)
    try:
        current_payment_config()
    except PaymentsOff as exc:
        return again(f"WeChat Pay is not configured here: {exc}", 503)
    try:
        with db.unit_of_work():
            made = jobs.request_refund(out_trade_no, amount_fen, reason, number, staff_id=g.staff_id)
            made_no = made.out_refund_no
    except service.UnknownOrder:
        return _render(out_trade_no)
    except IntegrityError:  # the same form's other post inserted the same refund number first
        with db.unit_of_work():
            landed = refund_desk.refund_exists(number)
        if not landed:
            raise
        made_no = number
    except service.RefundRefused as exc:
        with db.unit_of_work():
            left = (refund_desk.sheet(out_trade_no) or {}).get("left", "0.00")
        if str(exc).startswith("only "):  # another refund got there between the page and the lock
            return again(f"{money.format_fen(amount_fen)} yuan is more than is left to refund: at most {left} yuan "
                         f"(超过可退金额，最多可退 {left} 元)", 400)
        return again(f"refused: {exc}", 409)
    return redirect(url_for("console_refunds.order", out_trade_no=out_trade_no, done=made_no), code=303)


@bp.get("/api/orders/<out_trade_no>")
@roles(CASHIER)
def show(out_trade_no: str) -> Any:
    """What the page polls: the order's money and each refund's state."""
    with db.unit_of_work():
        found = refund_desk.sheet(out_trade_no)
    if found is None:
        return jsonify(error="no such order"), 404
    return jsonify(order=found)
