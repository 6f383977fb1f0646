"""One-key customer service: the shopper's way in (menu button, 人工, the mini-program's contact
button) and every message of a shopper whose conversation is open. The desk (service_desk) decides;
these adapt pushes to it and its answers to replies."""
from __future__ import annotations

from datetime import datetime, timezone

from service_desk import intake
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext


def _at(ctx: PushContext) -> datetime:
    return datetime.fromtimestamp(ctx.created_at, timezone.utc)


def _text(ctx: PushContext) -> str:
    content = ctx.push.fields.get("Content", "")
    return content.strip() if isinstance(content, str) else ""


def _field(ctx: PushContext, name: str) -> str:
    value = ctx.push.fields.get(name, "")
    return value if isinstance(value, str) else ""


def contact_agent(ctx: PushContext) -> Reply:
    """人工 / 客服 / 投诉: straight to the queue for a person."""
    answer = intake.ask_for_person(ctx.openid, "keyword", now=_at(ctx))
    return replies.text(answer.text or intake.GREETING)


def menu_contact_agent(ctx: PushContext) -> Reply:
    """The menu's customer-service button opens a conversation; the FAQ answers first."""
    conversation = intake.start(ctx.openid, "menu", now=_at(ctx))
    if conversation.status != "bot":
        return replies.text("客服正在为您服务，请直接发送您的问题。")
    return replies.text(intake.GREETING)


def mini_program_contact(ctx: PushContext) -> Reply | None:
    """The mini-program's contact button (`user_enter_tempsession`), with where the shopper was
    (SessionFrom: a product, an order, a counter). Events there get no passive reply: the
    greeting goes as a customer-service message, inside the 1-minute window the entry opens."""
    intake.start(ctx.openid, "mp_contact", context=_field(ctx, "SessionFrom")[:200], channel="mp", now=_at(ctx))
    intake.greet_after_entry(ctx.openid)
    return None


def rate_service(ctx: PushContext) -> Reply | None:
    """A tap on the one-tap rating menu sent when a conversation was resolved."""
    if intake.rate(ctx.openid, _field(ctx, "bizmsgmenuid"), _at(ctx)):
        return replies.text("感谢您的评价！")
    return None


def in_conversation(ctx: PushContext) -> Reply | None:
    """A message from a shopper whose conversation is open: the desk takes it. When the database
    says there is no open conversation after all (the Redis mark was stale), the message takes the
    route it would have taken."""
    if _field(ctx, "bizmsgmenuid").startswith("csat:"):
        return rate_service(ctx)
    answer = intake.on_message(ctx.openid, text=_text(ctx), msg_type=ctx.push.msg_type, now=_at(ctx))
    if answer is None:
        if ctx.fallback is None:
            return None
        handler, fallback_ctx = ctx.fallback
        return handler(fallback_ctx)
    return replies.text(answer.text) if answer.text else None
