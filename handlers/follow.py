"""Follow, unfollow and QR scans."""
from __future__ import annotations

from marketing import service as marketing
from marketing import touches
from members import service as members
from wx_service.ground.extensions import settings
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext


def on_subscribe(ctx: PushContext) -> Reply:
    """Welcome; record the follower and, for a follow via a counter's QR code, its scene. The
    funnel's follow (and scan) touches are one INSERT more, keyed by openid+CreateTime."""
    members.record_follow(ctx.openid, ctx.created_at, scene=ctx.scene)
    touches.record_push(ctx.openid, ctx.created_at, ctx.scene, follow=True)
    if ctx.scene:
        marketing.follow_up_scan(ctx.openid, ctx.scene)
    return replies.text(settings().WELCOME_TEXT)


def on_unsubscribe(ctx: PushContext) -> None:
    """Mark the follower; WeChat shows nothing to someone who has just left, so no reply."""
    members.record_unfollow(ctx.openid, ctx.created_at)
    return None


def on_scan(ctx: PushContext) -> Reply | None:
    """An existing follower scanned a parametric code: record it, follow up by message."""
    members.record_scan(ctx.openid, ctx.created_at, ctx.scene)
    touches.record_push(ctx.openid, ctx.created_at, ctx.scene, follow=False)
    code = marketing.follow_up_scan(ctx.openid, ctx.scene)
    if code is None:
        return None
    return replies.text(f"欢迎来到{code.name}！")
