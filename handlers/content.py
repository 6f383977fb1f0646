"""Mall content on request: news, activities, store information, help."""
from __future__ import annotations

from marketing import service as marketing
from wx_service.ground.extensions import settings
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import MAX_ARTICLES_FOR_EVENT, MAX_ARTICLES_FOR_MESSAGE, Article, Reply
from wx_service.ground.router import PushContext


def _articles(ctx: PushContext, kind: str, empty_text: str) -> Reply:
    # WeChat allows 1 article in reply to a message and 8 in reply to a menu click.
    limit = MAX_ARTICLES_FOR_MESSAGE if ctx.push.is_user_message else MAX_ARTICLES_FOR_EVENT
    found = marketing.latest_articles(kind, limit)
    if not found:
        return replies.text(empty_text)
    return replies.news(*(Article(a.title, a.description, a.url, a.image_url) for a in found))


def mall_news(ctx: PushContext) -> Reply:
    return _articles(ctx, "news", "暂时没有新的商场资讯，敬请期待。")


def activities(ctx: PushContext) -> Reply:
    return _articles(ctx, "activity", "近期暂无活动，敬请关注。")


def store_info(ctx: PushContext) -> Reply:
    info = marketing.store_info()
    if info is None:
        return replies.text("门店信息正在更新中。")
    return replies.text(f"{info.name}\n地址：{info.address}\n营业时间：{info.opening_hours}\n电话：{info.phone}")


def help_text(ctx: PushContext) -> Reply | None:
    """The reply for anything unrecognised. Events nobody routed (VIEW, LOCATION, ...) get none."""
    if not ctx.push.is_user_message:
        return None
    return replies.text(settings().HELP_TEXT)
