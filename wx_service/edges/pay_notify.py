"""WeChat Pay notifications (API v3): POST /pay/notify (payments) and /pay/refund-notify.

Thin edge: raw body (size-capped) -> signature verified BEFORE parsing -> envelope parsed into its
typed shape -> resource decrypted and parsed (payments.shapes; a wrong shape is a 400 naming the
field) -> one unit of work around the payments service -> 204 once committed. Anything not
stored answers 4xx/5xx with {"code": "FAIL", "message": ...} so WeChat sends it again (§10.4);
nothing is acknowledged that was not committed.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from payments import service
from payments.config import PaymentConfig, load_payment_config
from payments.exceptions import DecryptFailed, SignatureProbe, StaleTimestamp, UnknownSerial, VerificationFailed
from payments.shapes import NotificationEnvelope, RefundNotice, Transaction
from payments.wxpay_v3 import decrypt_resource
from wx_service.ground.db import database_unavailable
from wx_service.ground.validation import BadShape, parse_json

log = logging.getLogger(__name__)

bp = Blueprint("pay_notify", __name__)

MAX_BODY = 64 * 1024  # WeChat Pay notifications are a few KB
EXTENSION = "wx_pay"


def init_app(app: Flask, settings) -> None:
    """Build the payment configuration once (None: payments off) and mount the endpoints."""
    app.extensions[EXTENSION] = load_payment_config(settings)
    app.register_blueprint(bp)


def _fail(status: int, message: str) -> Response:
    response = jsonify({"code": "FAIL", "message": message})
    response.status_code = status
    return response


def _config() -> PaymentConfig | None:
    return current_app.extensions.get(EXTENSION)


def _read_body() -> bytes | None:
    length = request.content_length
    if length is not None and length > MAX_BODY:
        return None
    body = request.stream.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _handle(kind: str) -> Response:
    config = _config()
    if config is None:
        return _fail(503, "payments are not configured")
    body = _read_body()
    if body is None:
        return _fail(413, "body too large")
    try:
        config.verifier.verify(request.headers, body)
    except UnknownSerial as exc:
        # WeChat may have rotated its key: refuse, it retries; ops refetch the certificates.
        log.warning("pay notification with unknown serial", extra={"serial": exc.serial})
        return _fail(401, "unknown Wechatpay-Serial")
    except SignatureProbe:
        return _fail(401, "signature probe")
    except StaleTimestamp:
        return _fail(401, "stale timestamp")
    except VerificationFailed as exc:
        log.warning("pay notification refused: %s", type(exc).__name__)
        return _fail(401, "signature verification failed")
    shape = RefundNotice if kind == "refund" else Transaction
    envelope: NotificationEnvelope | None = None
    try:
        envelope = parse_json(NotificationEnvelope, body)
        resource = parse_json(shape, decrypt_resource(config.apiv3_key, envelope.resource.model_dump()))
    except DecryptFailed:
        log.warning("pay notification does not decrypt", extra={"notification_id": envelope and envelope.id})
        return _fail(400, "resource does not decrypt")
    except BadShape as exc:
        # Signed by WeChat and still not the shape it documents: say which field, keep no
        # traceback, and let WeChat's retries bring it back while someone looks.
        log.error("pay notification malformed: %s", exc,
                  extra={"notification_id": envelope and envelope.id, "kind": kind})
        return _fail(400, f"malformed notification: {exc}")
    notification_id = envelope.id
    apply = service.apply_refund_notification if kind == "refund" else service.apply_payment_notification
    db = current_app.extensions["wx"].db
    try:
        with db.unit_of_work():
            result = apply(resource, notification_id, mchid=config.mchid)
    except service.NotificationRejected as exc:
        log.error("pay notification rejected: %s", exc, extra={"notification_id": notification_id, "kind": kind,
                                                                "out_trade_no": resource.out_trade_no})
        return _fail(400, str(exc))
    except IntegrityError as exc:
        if service.is_duplicate_notification(exc):
            return Response(status=204)  # the same notification, committed by a concurrent request
        log.exception("pay notification not stored")
        return _fail(500, "not stored")
    except SQLAlchemyError as exc:
        if database_unavailable(exc):  # the database is away: one line per try, no traceback
            log.error("pay notification not stored: database unavailable (%s)", type(getattr(exc, "orig", None) or exc).__name__,
                      extra={"notification_id": notification_id, "out_trade_no": resource.out_trade_no})
        else:
            log.exception("pay notification not stored")
        return _fail(500, "not stored")
    log.info("pay notification", extra={"kind": kind, "outcome": result.outcome, "state": result.state,
                                        "notification_id": notification_id, "out_trade_no": result.out_trade_no})
    return Response(status=204)


@bp.post("/pay/notify")
def payment_notify() -> Response:
    return _handle("transaction")


@bp.post("/pay/refund-notify")
def refund_notify() -> Response:
    return _handle("refund")
