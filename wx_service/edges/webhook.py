"""`GET/POST /wechat`: the Official Account's server URL.

verify (timestamp, signature) -> parse (hardened) -> decrypt (msg_signature) -> replay guard and
dedup claim (one Redis call) -> route -> handler -> reply (encrypted when the push was) -> record
the push with its reply and commit. A retry finds the claim and gets the recorded reply, or
`success` while the first attempt still runs (see wx_service.ground.dedup).

Bad input gets a 4xx naming the problem, is logged, and changes nothing. Everything the handler
does commits in the same transaction as the record of the push, so a push is handled exactly once
even if Redis forgets it.
"""
from __future__ import annotations

import hashlib
import logging
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from service_desk.models import RESOLVED, Conversation
from wx_service.ground.db import Database, database_unavailable, utcnow
from wx_service.ground.dedup import Claim, NonceGuard, PushDedup
from wx_service.ground.extensions import services
from wx_service.ground.logs import bind, log_context, mask_openid
from wx_service.ground.models import InboundPush
from wx_service.ground.protocol.crypto import MessageCrypto
from wx_service.ground.protocol.errors import (
    BodyTooLarge,
    EncryptionRequired,
    InvalidAppId,
    MalformedXml,
    ProtocolError,
    ReplayedRequest,
    StaleTimestamp,
)
from wx_service.ground.protocol.messages import Push, build_push
from wx_service.ground.protocol.replies import SUCCESS, Reply, parse_reply
from wx_service.ground.protocol.signature import check_msg_signature, check_signature
from wx_service.ground.protocol.xml import parse_envelope, parse_xml
from wx_service.ground.router import Handler

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)

XML_TYPE = "application/xml; charset=utf-8"
# A user message joins the sender's open customer-service conversation inside the INSERT itself
# (an index probe, no round trip of its own): stored once, linked even when Redis forgot the
# conversation. `link_openid` is the sender for user messages and NULL for events.
_OPEN_CONVERSATION = (select(Conversation.id).where(Conversation.openid == bindparam("link_openid"),
                                                    Conversation.status != RESOLVED).scalar_subquery())
# A Core INSERT on the table: compiled once and cached, unlike an ORM flush.
_INSERT_PUSH = insert(InboundPush.__table__).values(conversation_id=_OPEN_CONVERSATION)
_RECORD_COLUMNS = ("appid", "dedup_key", "openid", "msg_type", "event", "event_key", "content", "media_id",
                   "handler", "response", "created_at_wechat", "received_at")


class PushRecorder:
    """Writes the record of a push whose handler did no database work: one statement, committed
    on its own.

    On Postgres through psycopg it is a single prepared INSERT on a connection from the database's
    autocommit pool (one round trip, no BEGIN/COMMIT, no SQLAlchemy execution context). Most pushes
    take this path, so it skips what it can: against the session's pool, switching autocommit on
    and off and the rollback on check-in cost as much as the INSERT itself. On anything else
    (SQLite in the embedded mode) it is a Core INSERT in a short transaction. A duplicate raises
    SQLAlchemy's IntegrityError either way, as the handler's transaction would."""

    _SQL = (f"INSERT INTO {InboundPush.__tablename__} ({', '.join(_RECORD_COLUMNS)}, conversation_id) "
            f"VALUES ({', '.join('%s' for _ in _RECORD_COLUMNS)}, "
            f"(SELECT id FROM {Conversation.__tablename__} WHERE openid = %s AND status <> '{RESOLVED}'))")

    def __init__(self, db: Database) -> None:
        self.db = db  # the Database, not its engines: read at each insert, after any re-init

    def insert(self, record: dict[str, object]) -> None:
        engine = self.db.autocommit_engine
        if engine is None or engine.dialect.driver != "psycopg":
            with self.db.engine.begin() as conn:
                conn.execute(_INSERT_PUSH, record)
            return
        dbapi = engine.dialect.loaded_dbapi
        params = [record[column] for column in _RECORD_COLUMNS] + [record["link_openid"]]
        # Pooled connections are not pinged (a round trip per push): after a database restart the
        # first use of each fails. Then the whole pool is replaced, as SQLAlchemy does when its own
        # statements meet a disconnect, and the INSERT is tried once more. If the lost INSERT had in
        # fact committed, the retry's duplicate key says so and the caller answers with the stored
        # response, as for any retried push.
        for attempt in (1, 2):
            pooled = engine.raw_connection()
            try:
                with pooled.driver_connection.cursor() as cursor:
                    cursor.execute(self._SQL, params, prepare=True)
                return
            except dbapi.IntegrityError as exc:
                raise IntegrityError(self._SQL, record, exc) from exc
            except dbapi.Error:
                driver = pooled.driver_connection
                if driver is None or not (driver.broken or driver.closed):
                    raise
                pooled.invalidate()
                engine.dispose()
                if attempt == 2:
                    raise
            finally:
                pooled.close()
        raise AssertionError("unreachable")


def _text_field(push: Push, name: str) -> str:
    value = push.fields.get(name, "")
    return value if isinstance(value, str) else ""


def _content_of(push: Push) -> str:
    """What the console shows of a user message: its text, a picture's URL, a voice's transcript."""
    return str(push.fields.get("Content", "")) or _text_field(push, "PicUrl") or _text_field(push, "Recognition")


class WebhookPipeline:
    """The protocol work of one account's webhook, built once per app."""

    def __init__(self, app) -> None:
        wx = app.extensions["wx"]
        s = wx.settings
        self.settings = s
        self.crypto = MessageCrypto(s.WECHAT_TOKEN, s.WECHAT_AES_KEY, s.WECHAT_APPID)
        self.dedup = PushDedup(wx.redis, s.WECHAT_APPID, s.DEDUP_PENDING_TTL)
        self.nonces = NonceGuard(wx.redis, s.WECHAT_APPID, s.WEBHOOK_MAX_SKEW)
        from handlers.routes import build_router

        self.router = build_router()
        self.recorder = PushRecorder(wx.db)

    # -- checks ------------------------------------------------------------------------------
    def check_query(self, args) -> tuple[str, str]:
        timestamp = args.get("timestamp", "")
        nonce = args.get("nonce", "")
        if not timestamp.isdigit() or not nonce or len(nonce) > 64:
            raise StaleTimestamp("timestamp and nonce are required")
        if abs(time.time() - int(timestamp)) > self.settings.WEBHOOK_MAX_SKEW:
            raise StaleTimestamp(f"timestamp is more than {self.settings.WEBHOOK_MAX_SKEW}s from now")
        check_signature(self.settings.WECHAT_TOKEN, timestamp, nonce, args.get("signature"))
        return timestamp, nonce

    def read_body(self) -> bytes:
        limit = self.settings.WEBHOOK_MAX_BODY
        if request.content_length is not None and request.content_length > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        body = request.stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        return body

    def open_push(self, args, body: bytes, timestamp: str, nonce: str) -> tuple[Push, bool]:
        """The authenticated push and whether it came encrypted."""
        encrypted = args.get("encrypt_type", "raw").lower() == "aes"
        fields = parse_envelope(body) if encrypted else parse_xml(body)
        if not encrypted and self.settings.WECHAT_REQUIRE_ENCRYPTION:
            raise EncryptionRequired("this account accepts only encrypted (safe or compatible mode) pushes")
        if encrypted:
            encrypt = fields.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt:
                raise MalformedXml("encrypt_type=aes but no <Encrypt>")
            check_msg_signature(self.settings.WECHAT_TOKEN, timestamp, nonce, encrypt, args.get("msg_signature"))
            # In compatible mode the plaintext copy is unauthenticated: trust only what decrypts.
            fields = parse_xml(self.crypto.decrypt(encrypt))
        original_id = self.settings.WECHAT_ORIGINAL_ID
        if original_id and fields.get("ToUserName") != original_id:
            raise InvalidAppId("push is addressed to another account")
        return build_push(fields), encrypted

    # -- handling ------------------------------------------------------------------------------
    def handle(self, push: Push, encrypted: bool, timestamp: str, nonce: str,
               in_conversation: bool | None = False) -> bytes:
        """Run the handler and record the push with its response, exactly once.

        Every push gets its `inbound_pushes` row, written before the reply leaves: the unique key
        (appid, dedup_key) is what makes a retry a no-op when Redis has forgotten the push. How the
        row is written depends on what the handler did:

        - it used the database session (read, wrote, or queued after-commit work): the row is one
          INSERT in the handler's own transaction. If the push was already handled, the unique key
          fails the INSERT and the whole transaction, handler's writes and after-commit jobs
          included, rolls back. Handlers act only through the database and after-commit jobs, so a
          rolled-back run leaves no trace.
        - it never touched the session (the help text, a keyword reply, a transfer to customer
          service: most text messages): there is nothing to commit but the row itself, so it is one
          autocommit INSERT on a pooled connection, with no ORM session built at all. The guarantee
          is the same: the row is durable before the reply is sent, and a duplicate fails it.
        """
        db = services().db
        db.after_fork()
        registry = db.session.registry
        handler, ctx = self.router.resolve(push, in_conversation)
        try:
            reply = handler(ctx) if handler else None
            if reply is None:
                response = SUCCESS
            else:
                xml = reply.render(push.openid, push.fields["ToUserName"], push.is_user_message)
                if encrypted:
                    xml = self.crypto.encrypted_reply(xml, timestamp, nonce)
                response = xml.encode("utf-8")
            record = self._record(push, handler, response)
            if registry.has():
                with db.unit_of_work() as session:  # the handler's session: its effects commit with the row
                    session.connection().execute(_INSERT_PUSH, record)
            else:
                self.recorder.insert(record)
        except BaseException:
            if registry.has():
                db.session().rollback()
            raise
        finally:
            if registry.has():
                db.session.remove()
        return response

    def _record(self, push: Push, handler: Handler | None, response: bytes) -> dict[str, object]:
        event_key = push.fields.get("EventKey", "")
        return {
            "appid": self.settings.WECHAT_APPID, "dedup_key": push.dedup_key, "openid": push.openid,
            "msg_type": push.msg_type, "event": push.event,
            "event_key": event_key[:256] if isinstance(event_key, str) else "",
            "content": _content_of(push)[:2000],
            "media_id": _text_field(push, "MediaId")[:128],
            "link_openid": push.openid if push.is_user_message else None,
            "handler": f"{handler.__module__}.{handler.__qualname__}" if handler else "",
            "response": response.decode("utf-8"), "created_at_wechat": int(push.fields["CreateTime"]),
            "received_at": utcnow(),
        }

    def answer_late(self, openid: str, reply: Reply) -> None:
        """WeChat gave up on the attempt that produced `reply` (its retry was told `success`), so
        the shopper never saw it: send it through the customer-service API (reference §3.6)."""
        queue = services().queue
        if reply.kind == "text":
            queue.enqueue("wx_service.ground.jobs.send_text", openid=openid, text=reply.text)
        elif reply.kind == "news" and reply.articles:
            # A customer-service news message carries one article (reference §3.5).
            first = reply.articles[0]
            queue.enqueue("wx_service.ground.jobs.send_news", openid=openid, title=first.title,
                          description=first.description, url=first.url, picurl=first.image)
        else:
            log.warning("a late %s reply has no customer-service form; not sent", reply.kind)
            return
        log.info("reply came after WeChat gave up; sending it as a customer-service message")

    def reply_in(self, response: bytes) -> Reply | None:
        """The reply carried by a recorded response (decrypted when it was encrypted)."""
        if response == SUCCESS:
            return None
        fields = parse_xml(response)
        encrypt = fields.get("Encrypt")
        if isinstance(encrypt, str):
            fields = parse_xml(self.crypto.decrypt(encrypt))
        return parse_reply(fields)

    def stored_response(self, push: Push) -> bytes | None:
        db = services().db
        with db.unit_of_work() as session:
            found = session.scalar(self._response_of(push.dedup_key))
        return found.encode("utf-8") if found is not None else None

    def _response_of(self, dedup_key: str):
        return select(InboundPush.response).where(
            InboundPush.appid == self.settings.WECHAT_APPID, InboundPush.dedup_key == dedup_key)


# How often the late-reply job looks for the first attempt's record.
LATE_REPLY_POLL_SECONDS = 0.5


def deliver_late_reply(dedup_key: str, openid: str) -> None:
    """Job: a retry of this push was told `success` while the first attempt ran, so WeChat dropped
    that attempt's answer. Wait for its record (at most as long as its claim lasts), then send the
    recorded reply by customer service. If the attempt failed instead, there is nothing to send,
    and WeChat will not retry a push it was told `success` about: say so in the log."""
    pipeline = _pipeline()
    session = services().db.session()
    query = pipeline._response_of(dedup_key)
    deadline = time.monotonic() + pipeline.settings.DEDUP_PENDING_TTL + 5
    while True:
        response = session.scalar(query)
        session.rollback()  # end the read: the next look must see commits made since
        if response is not None:
            break
        if not pipeline.dedup.is_claimed(dedup_key) or time.monotonic() > deadline:
            response = session.scalar(query)  # it may have committed just before its claim lapsed
            session.rollback()
            if response is None:
                log.warning("a push answered `success` on retry never finished; no reply to send late")
                return
            break
        time.sleep(LATE_REPLY_POLL_SECONDS)
    reply = pipeline.reply_in(response.encode("utf-8"))
    if reply is not None:
        pipeline.answer_late(openid, reply)


def _pipeline() -> WebhookPipeline:
    return current_app.extensions["wx_webhook"]


def _refuse(exc: ProtocolError) -> Response:
    log.warning("refused push: %s", exc.detail, extra={
        "code": exc.code, "status": exc.http_status, "remote": request.remote_addr})
    return Response(f"{type(exc).__name__}: {exc.detail}\n", status=exc.http_status, mimetype="text/plain")


def _respond(body: bytes) -> Response:
    if body == SUCCESS:
        return Response(body, mimetype="text/plain")
    return Response(body, content_type=XML_TYPE)


@bp.get("/wechat")
def verify_url() -> Response:
    """WeChat's server-URL check: echo `echostr` exactly, only when the signature holds."""
    pipeline = _pipeline()
    try:
        pipeline.check_query(request.args)
    except ProtocolError as exc:
        return _refuse(exc)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("/wechat")
def receive_push() -> Response:
    pipeline = _pipeline()
    with log_context(request_id=request.headers.get("X-Request-Id", "")):
        try:
            timestamp, nonce = pipeline.check_query(request.args)
        except ProtocolError as exc:
            return _refuse(exc)
        # Signed from here on: whatever happens to this body, its (timestamp, nonce) is now taken.
        digest = ""
        try:
            body = pipeline.read_body()
            digest = hashlib.sha256(body).hexdigest()
            push, encrypted = pipeline.open_push(request.args, body, timestamp, nonce)
        except ProtocolError as exc:
            if digest and pipeline.nonces.is_replay(timestamp, nonce, digest):
                exc = ReplayedRequest("timestamp and nonce were already used with another body")
            return _refuse(exc)

        bind(msg_id=push.dedup_key, openid=mask_openid(push.openid), type=push.msg_type, event=push.event)
        claim: Claim = pipeline.dedup.claim(push.dedup_key, pipeline.nonces, timestamp, nonce, digest, push.openid)
        if claim.replay:
            return _refuse(ReplayedRequest("timestamp and nonce were already used with another body"))
        if claim.taken:
            return _answer_retry(pipeline, push)
        assert claim.owner is not None
        try:
            try:
                response = pipeline.handle(push, encrypted, timestamp, nonce, claim.in_conversation)
            except IntegrityError:
                stored = pipeline.stored_response(push)
                if stored is None:
                    raise  # not this push's key: some other constraint the handler ran into
                # Redis had forgotten this push, the database had not: answer as before.
                response = stored
                log.info("duplicate push caught by the database key")
        except Exception as exc:
            pipeline.dedup.release(push.dedup_key, claim.owner)
            if database_unavailable(exc):  # one line per push while the database is away
                log.error("push not handled: database unavailable (%s); WeChat's retry runs it again",
                          type(exc).__name__)
                return Response("database unavailable\n", status=500, mimetype="text/plain")
            log.exception("handler failed; dedup key freed so WeChat's retry can run it again")
            return Response("handler error\n", status=500, mimetype="text/plain")
        log.info("push handled")
        return _respond(response)


def _answer_retry(pipeline: WebhookPipeline, push: Push) -> Response:
    """Another attempt claimed this push: answer with its recorded reply, or with `success` while
    it still runs (and have that attempt's reply sent by customer service once it is recorded)."""
    stored = pipeline.stored_response(push)
    if stored is not None:
        log.info("retry answered with the recorded reply")
        return _respond(stored)
    if pipeline.dedup.mark_superseded(push.dedup_key):
        try:
            services().queue.enqueue("wx_service.edges.webhook.deliver_late_reply",
                                     dedup_key=push.dedup_key, openid=push.openid)
        except Exception:
            log.exception("could not queue the late reply")
    log.info("retry while the first attempt runs; answered success")
    return _respond(SUCCESS)
