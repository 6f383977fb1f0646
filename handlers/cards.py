"""Member card (卡券) events and "my membership". Card events get no passive reply (WeChat shows
none for them): each records what happened and, where WeChat must be called, queues a job."""
from __future__ import annotations

from marketing import touches
from members import cards
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext


def _field(ctx: PushContext, name: str) -> str:
    value = ctx.push.fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _code(ctx: PushContext) -> str:
    return _field(ctx, "UserCardCode")


def on_user_get_card(ctx: PushContext) -> None:
    """A shopper claimed the card: record it (creating the member on first sight). In the funnel
    this is the shopper becoming a member: one touch per card code (a claim again after deleting
    adds none), its campaign the card QR's OuterStr when that is one of our scenes."""
    card = cards.record_claim(ctx.openid, _field(ctx, "CardId"), _code(ctx), unionid=_field(ctx, "UnionId") or None,
                              outer_str=_field(ctx, "OuterStr"), source_scene=_field(ctx, "SourceScene"),
                              restored=_field(ctx, "IsRestoreMemberCard") == "1")
    if card is not None:
        touches.record("member", key=f"card:{card.code}", member_id=card.member_id, openid=ctx.openid,
                       source=_field(ctx, "OuterStr"), occurred_at=touches.push_time(ctx.created_at))
    return None


def on_submit_user_info(ctx: PushContext) -> None:
    """The one-click activation form was submitted: a job reads it and activates the card."""
    cards.request_activation(_code(ctx))
    return None


def on_user_view_card(ctx: PushContext) -> None:
    cards.record_view(_code(ctx))
    return None


def on_user_del_card(ctx: PushContext) -> None:
    cards.record_delete(_code(ctx))
    return None


def on_update_member_card(ctx: PushContext) -> None:
    cards.record_event(_code(ctx), "update_member_card", bonus=_field(ctx, "ModifyBonus"),
                       balance=_field(ctx, "ModifyBalance"))
    return None


def on_user_consume_card(ctx: PushContext) -> None:
    cards.record_event(_code(ctx), "user_consume_card", source=_field(ctx, "ConsumeSource"),
                       location=_field(ctx, "LocationName"), staff=_field(ctx, "StaffOpenId"))
    return None


def on_card_pass_check(ctx: PushContext) -> None:
    cards.record_review(_field(ctx, "CardId"), passed=True)
    return None


def on_card_not_pass_check(ctx: PushContext) -> None:
    cards.record_review(_field(ctx, "CardId"), passed=False, reason=_field(ctx, "RefuseReason"))
    return None


def my_membership(ctx: PushContext) -> Reply:
    """Menu MY_MEMBERSHIP and the keywords 会员 / 我的会员 / 积分. A shopper without a card is
    sent the card itself, so the menu is one of the ways to get it."""
    if not cards.has_card(ctx.openid) and cards.offer_card(ctx.openid):
        return replies.text(cards.OFFER_TEXT)
    return replies.text(cards.membership_text(ctx.openid))
