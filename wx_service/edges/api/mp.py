"""The mini-program's JSON API: login, phone binding, profile, level progress, points, coupons,
and JSAPI payment (prepay + the buyer's order state).

Thin: parse, call WeChat (login and phone only; the mini-program waits on them), call the member
services in one unit of work, shape the answer. Every error is JSON ({"error", "message"});
nothing a client sends gives a 500. The spec is served at /api/mp/openapi.json.
"""
from __future__ import annotations

import functools
import json
import logging
import secrets
import time
from typing import Any, Callable, TypeVar

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from members import cards, coupons, ledger
from members.exceptions import PhoneBoundToAnotherMember, UnknownMember
from members.identity import MP, bind_phone, get_member, resolve_member
from members.points import membership_summary
from payments import counter as pay_flow
from payments import jsapi
from payments.config import PaymentsOff
from wx_service.edges.api import mp_json, mp_sessions
from wx_service.edges.api.mp_bodies import CodeRequest, PayOrderRequest
from wx_service.edges.api.mp_openapi import SPEC
from wx_service.edges.bodies import json_body
from wx_service.ground import mp_client
from wx_service.ground.extensions import db, wechat_client
from wx_service.ground.protocol.signature import card_ext_signature
from wx_service.ground.validation import BadShape
from wx_service.ground.wechat_client import WeChatApiError

bp = Blueprint("mp_api", __name__)
log = logging.getLogger(__name__)

T = TypeVar("T")

CODE_ERRORS = {40029, 40163, 40226}  # the mini-program should call wx.login / ask again
MAX_PER_PAGE = 100


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify(error=code, message=message, **extra)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mp"'
    return response


class ApiError(Exception):
    """A refusal raised anywhere in a view, answered as error(...) by the blueprint's handler."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _wechat_failure(exc: WeChatApiError, what: str) -> ApiError:
    """WeChat's errcode as an answer the mini-program can act on (never the raw exception text:
    it may carry a URL with the secret or a token)."""
    log.warning("mini-program %s failed: errcode=%s", what, exc.errcode)
    if exc.errcode in CODE_ERRORS:
        return ApiError(400, "invalid_code", "the code is invalid, expired or already used; get a new one",
                        wechat_errcode=exc.errcode)
    if exc.errcode == 45011:
        return ApiError(429, "rate_limited", "too many attempts; try again in a minute", wechat_errcode=45011)
    if isinstance(exc, mp_client.WatermarkMismatch):
        return ApiError(502, "wechat_bad_response", "WeChat's answer was for another app")
    return ApiError(502, "wechat_unavailable", f"WeChat did not answer the {what} request; try again",
                    wechat_errcode=exc.errcode)


def _body(shape: type[T]) -> T:
    """The request body as `shape`, or a 400 that names the wrong field."""
    try:
        return json_body(shape)
    except BadShape as exc:
        raise ApiError(400, "bad_request", str(exc), field=exc.field) from None


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be an integer from {low} to {high}")
    return value


def authenticated(view: Callable[..., Any]) -> Callable[..., Any]:
    """Our own bearer token (from /login) in `Authorization: Bearer …`, else 401."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        session = mp_sessions.lookup(token.strip()) if scheme.lower() == "bearer" else None
        if session is None:
            return error(401, "unauthorized", "log in again: the session token is missing, invalid or expired")
        return view(session, *args, **kwargs)
    return wrapped


def json_api_plumbing(blueprint: Blueprint, what: str) -> None:
    """What every blueprint under /api/mp answers alike: no caching (tokens and personal data),
    an ApiError as its JSON error, and anything else as JSON too (never an HTML 500 page)."""
    @blueprint.after_request
    def _no_store(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error(exc.status, exc.code, exc.message, **exc.extra)

    @blueprint.errorhandler(Exception)
    def _any_error(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)
        log.exception("%s failure", what)
        return error(500, "internal_error", "something went wrong on our side")


json_api_plumbing(bp, "mini-program API")


@bp.route("/<path:_rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def _no_route(_rest: str) -> Response:
    """Unknown paths under /api/mp answer JSON too (a blueprint's error handlers never see
    routing errors, so this catch-all stands in for them)."""
    return error(404, "not_found", "no such endpoint; see /api/mp/openapi.json")


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(SPEC)


@bp.post("/login")
def login() -> Response:
    """wx.login's code → WeChat's openid/unionid → the member → our session token."""
    code = _body(CodeRequest).code
    try:
        wx_login = mp_client.code2session(code)
    except WeChatApiError as exc:
        raise _wechat_failure(exc, "login") from None
    for attempt in (1, 2):  # a concurrent first login for the same openid may win the insert
        try:
            with db.unit_of_work():
                member = resolve_member(MP, wx_login.openid, wx_login.unionid)
                body = mp_json.member(membership_summary(member.id))
            break
        except IntegrityError:
            if attempt == 2:
                raise
    session = mp_sessions.create(body["id"], wx_login.openid, wx_login.session_key)
    return jsonify(token=session.token, expires_in=mp_sessions.SESSION_TTL, member=body)


@bp.post("/phone")
@authenticated
def phone(session: mp_sessions.MpSession) -> Response:
    """Bind the phone WeChat verified; a duplicate member with it is merged, someone else's is 409."""
    code = _body(CodeRequest).code
    try:
        verified = mp_client.phone_number(code, session.openid)
    except WeChatApiError as exc:
        raise _wechat_failure(exc, "phone number") from None
    try:
        with db.unit_of_work():
            member = bind_phone(get_member(session.member_id).id, verified.phone)
            body = mp_json.member(membership_summary(member.id))
    except (PhoneBoundToAnotherMember, IntegrityError):
        return error(409, "phone_bound_to_another_member",
                     "this phone number already belongs to another WeChat user's membership; "
                     "please ask at the service desk")
    return jsonify(member=body)


@bp.get("/profile")
@authenticated
def profile(session: mp_sessions.MpSession) -> Response:
    with db.unit_of_work():
        return jsonify(member=mp_json.member(membership_summary(_member_id(session))))


@bp.get("/level-progress")
@authenticated
def level_progress(session: mp_sessions.MpSession) -> Response:
    with db.unit_of_work():
        return jsonify(mp_json.progress(membership_summary(_member_id(session))))


@bp.get("/points")
@authenticated
def points(session: mp_sessions.MpSession) -> Response:
    """The ledger, newest first, one page at a time, with the total count."""
    page = _int_arg("page", 1, 1, 1_000_000)
    per_page = _int_arg("per_page", 20, 1, MAX_PER_PAGE)
    with db.unit_of_work():
        member = get_member(_member_id(session))
        entries, total = ledger.history(member.id, page, per_page)
        return jsonify(page=page, per_page=per_page, total=total, balance=member.points_balance,
                       entries=[mp_json.points_entry(e) for e in entries])


@bp.get("/coupons")
@authenticated
def coupon_list(session: mp_sessions.MpSession) -> Response:
    """Coupons the member can still use, soonest to expire first."""
    with db.unit_of_work():
        member_id = get_member(_member_id(session)).id
        return jsonify(coupons=[mp_json.coupon(c) for c in coupons.for_member(member_id)])


def _member_id(session: mp_sessions.MpSession) -> int:
    """The surviving member for the session (a phone binding may have merged it since login)."""
    try:
        return get_member(session.member_id).id
    except UnknownMember:
        raise ApiError(401, "unauthorized", "this membership no longer exists; log in again") from None


@bp.get("/card/add-params")
@authenticated
def card_add_params(session: mp_sessions.MpSession) -> Response:
    """What wx.addCard needs to give the shopper the member card inside the mini-program: the
    card id and a cardExt signed with the card api_ticket (cached in Redis for every process)."""
    with db.unit_of_work():
        _member_id(session)
        definition = cards.current_definition()
        if definition is None or definition.status == "rejected":
            raise ApiError(404, "no_card", "the member card is not available yet")
        card_id = definition.card_id
    try:
        ticket = wechat_client().card_tickets.get()
    except WeChatApiError as exc:
        raise _wechat_failure(exc, "card ticket") from None
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    ext = {"timestamp": timestamp, "nonce_str": nonce,
           "signature": card_ext_signature(ticket, timestamp, card_id, nonce)}
    return jsonify(card_list=[{"cardId": card_id, "cardExt": json.dumps(ext, separators=(",", ":"))}])


# -- payment ---------------------------------------------------------------------------------------

@bp.post("/pay/orders")
@authenticated
def pay_order(session: mp_sessions.MpSession) -> Response:
    """A JSAPI order for the signed-in buyer and what wx.requestPayment needs to pay it. WeChat is
    called outside any transaction; its refusal closes the order (502), no clear answer leaves it
    unpaid for the jobs to settle (503, try again)."""
    body = _body(PayOrderRequest)
    with db.unit_of_work():
        member_id = _member_id(session)
    try:
        order, params = jsapi.open_jsapi_order(body.amount_fen, body.description.strip(), session.openid,
                                               member_id, body.source)
    except pay_flow.WechatRefused as exc:
        raise ApiError(502, "payment_refused", exc.message, out_trade_no=exc.out_trade_no) from None
    except pay_flow.OutcomeUnknown as exc:
        raise ApiError(503, "payment_unavailable", exc.message, out_trade_no=exc.out_trade_no) from None
    except PaymentsOff:
        raise ApiError(503, "payment_unavailable", "payments are not available now") from None
    body = jsapi.buyer_view(order.out_trade_no, session.openid)
    return jsonify(order=body, pay_params=params), 201


@bp.get("/pay/orders/<out_trade_no>")
@authenticated
def pay_order_state(session: mp_sessions.MpSession, out_trade_no: str) -> Response:
    """The order's state, for its buyer only (anyone else's order number is a 404)."""
    body = jsapi.buyer_view(out_trade_no, session.openid) if len(out_trade_no) <= 32 else None
    if body is None:
        raise ApiError(404, "not_found", "no such order")
    return jsonify(order=body)
