"""The cashier page (/console/cashier/): type the amount, scan the shopper's payment code, watch
the flow (submitted, USERPAYING, queries, PAID / failed / reversed) live, then the next shopper.

The page posts to a JSON call and polls another about once a second; the flow itself runs in
jobs (payments.cashier), so the till never waits on WeChat inside a request.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template

from members.staff import CASHIER
from payments.cashier import MAX_AMOUNT_FEN, CashierRefused, flow_view, parse_yuan, start_codepay
from payments.config import PaymentsOff, current_payment_config
from wx_service.edges.bodies import json_body
from wx_service.edges.console.auth import roles
from wx_service.edges.console.bodies import ChargeRequest
from wx_service.ground.extensions import db
from wx_service.ground.validation import BadShape

bp = Blueprint("console_cashier", __name__, url_prefix="/console/cashier", template_folder="templates")


@bp.get("/")
@roles(CASHIER)
def index():
    return render_template("console/cashier.html", max_yuan=MAX_AMOUNT_FEN // 100)


@bp.post("/api/charges")
@roles(CASHIER)
def charge():
    """{amount: "12.30" (yuan, as typed), auth_code, counter?, description?} -> 201 the flow."""
    try:
        body = json_body(ChargeRequest)
    except BadShape as exc:
        return jsonify(error="bad_request", message=str(exc), field=exc.field), 400
    try:
        current_payment_config()
    except PaymentsOff as exc:
        return jsonify(error="payments_off", message=str(exc)), 503
    try:
        with db.unit_of_work():
            order = start_codepay(parse_yuan(body.amount), body.auth_code, body.counter or "cashier", g.staff.id,
                                  body.description or "")
            out_trade_no = order.out_trade_no
    except CashierRefused as exc:
        return jsonify(error="refused", message=str(exc)), 400
    return jsonify(flow_view(out_trade_no)), 201


@bp.get("/api/charges/<out_trade_no>")
@roles(CASHIER)
def show(out_trade_no: str):
    view = flow_view(out_trade_no[:32])
    if view is None:
        return jsonify(error="not_found", message="no such payment-code order"), 404
    return jsonify(view)
