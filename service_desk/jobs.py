"""Background work of the desk: delivering what the store says (answers, greetings, the rating
menu) and recording WeChat's verdict; and every minute, offers nobody opened in time go to the
next agent, the Redis marks of open conversations are written again, and answers WeChat never
answered are marked failed for the agent to retry."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from service_desk import events, service
from service_desk.exceptions import AlreadyTaken
from service_desk.models import FAILED, PENDING, SENDING, SENT, Conversation, Message
from service_desk.outbound import CSAT_OPTIONS
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services, wechat_client
from wx_service.ground.mp_client import mp_wechat_client
from wx_service.ground.wechat_client import WeChatApiError

log = logging.getLogger(__name__)


def sweep_offers(now: datetime | None = None, seconds: float | None = None) -> int:
    """Every minute: each offer older than `seconds` goes back to the queue and on to the next
    agent (the one who let it lapse is skipped). Each conversation in its own savepoint, so one
    that changed meanwhile does not stop the rest. Returns how many offers were moved."""
    if seconds is None:
        seconds = services().settings.DESK_OFFER_SECONDS
    moved = 0
    for conversation_id, agent_id in service.offers_older_than(seconds, now):
        try:
            with db.session.begin_nested():
                if service.expire_offer(conversation_id, agent_id):
                    moved += 1
                    offered = service.offer_next(conversation_id)
                    log.info("offer lapsed", extra={"conversation": conversation_id, "from_agent": agent_id,
                                                    "to_agent": offered.id if offered else None})
        except AlreadyTaken:
            continue  # opened or taken between the read and now: nothing to move
    service.offer_waiting(now)  # and whatever waits in the queue goes to whoever is free now
    return moved


def refresh_marks() -> int:
    """Every minute: the Redis marks of open conversations written again (they are a cache the
    webhook's claim reads; after Redis lost its data they come back within a minute)."""
    return events.refresh_marks()


def fail_stalled_messages(now: datetime | None = None) -> int:
    """Every minute: an answer still pending after every retry the queue allows (WeChat never
    answered) is marked failed, so the agent sees it and can send it again. Returns how many."""
    intervals = services().settings.JOB_RETRY_INTERVALS
    cutoff = (now or utcnow()) - timedelta(seconds=sum(intervals) + 300)
    return db.session.execute(update(Message).where(Message.status == PENDING, Message.created_at < cutoff)
                              .values(status=FAILED, wechat_errmsg="WeChat did not answer after every retry; "
                                                                   "send it again")).rowcount


def _payload(message: Message, conversation: Conversation) -> tuple[str, dict]:
    """(API path, body) of the WeChat call that carries `message`."""
    openid = conversation.openid
    if message.kind == "template":
        s = services().settings
        return "message/template/send", {
            "touser": openid, "template_id": s.DESK_FALLBACK_TEMPLATE_ID, "client_msg_id": f"desk-{message.id}",
            "data": {"first": {"value": "客服回复了您的咨询"}, "keyword1": {"value": "在线客服"},
                     "keyword2": {"value": message.body[:200]}, "remark": {"value": "如需继续咨询，请直接回复本公众号。"}}}
    if message.kind == "msgmenu":
        return "message/custom/send", {"touser": openid, "msgtype": "msgmenu", "msgmenu": {
            "head_content": message.body,
            "list": [{"id": f"csat:{conversation.id}:{score}", "content": label} for score, label in CSAT_OPTIONS],
            "tail_content": "感谢您的反馈"}}
    if message.kind == "image":
        return "message/custom/send", {"touser": openid, "msgtype": "image", "image": {"media_id": message.media_id}}
    return "message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": message.body}}


def deliver(message_id: int) -> None:
    """Job: send one message and record WeChat's verdict on it. A transient error (WeChat busy, the
    network) raises and the queue retries; a refusal (45015, 45047, a bad media id...) is recorded
    on the message, with WeChat's words, for the agent to see and retry."""
    message = db.session.get(Message, message_id)
    if message is None or message.status not in (PENDING, SENDING):
        return  # sent already (a duplicate job), or withdrawn
    conversation = db.session.get(Conversation, message.conversation_id)
    path, body = _payload(message, conversation)
    client = mp_wechat_client() if conversation.channel == "mp" and message.kind != "template" else wechat_client()
    message.attempts += 1
    try:
        client.post(path, data=body)
    except WeChatApiError as exc:
        if exc.transient:
            raise
        message.status, message.wechat_errcode, message.wechat_errmsg = FAILED, exc.errcode, exc.errmsg[:256]
        log.info("desk message refused by WeChat", extra={"message": message.id, "errcode": exc.errcode})
    else:
        message.status, message.sent_at = SENT, utcnow()
    db.session.flush()
    events.publish_after_commit("delivery", conversation, message=message.id, status=message.status)
