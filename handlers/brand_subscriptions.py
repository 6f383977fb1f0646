"""Brand subscriptions from the OA (issue 12): "订阅 兰蔻" / "关注品牌 兰蔻" subscribe, "退订 兰蔻" /
"取消订阅 兰蔻" unsubscribe (the brand by its Chinese or English name, any case), "我的订阅" and
the 我的品牌 menu button list them with the link to the H5 page where every brand has a toggle.

Each keyword is one domain call in the push's unit of work. Unlike a plain keyword reply it costs
a few statements (find the brand, the state row, the ledger row and the funnel touch): a consent
change must be on record before the reply says it is."""
from __future__ import annotations

from marketing import subscriptions
from wx_service.ground.links import public_url
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext

PAGE = "/h5/brand-subscriptions"  # wx_service/edges/h5_subscriptions.py
PATTERN = r"^\s*(取消订阅|退订|关注品牌|订阅)\s*(\S.{0,63}?)\s*$"
UNSUBSCRIBE_WORDS = ("取消订阅", "退订")


def on_keyword(ctx: PushContext) -> Reply:
    """Subscribe or unsubscribe by keyword; the reply says what changed (or that nothing had to)."""
    assert ctx.match is not None
    word, name = ctx.match.group(1), ctx.match.group(2)
    brand = subscriptions.find_brand(name)
    if brand is None:
        return replies.text(f"没有找到品牌“{name[:20]}”。回复“我的订阅”查看已订阅的品牌，或点击选择：\n{public_url(PAGE)}")
    source = f"{word} {name}"[:128]
    if word in UNSUBSCRIBE_WORDS:
        changed = subscriptions.unsubscribe(ctx.openid, brand.id, "oa_keyword", source)
        return replies.text(f"已退订{brand.name}的新品和活动通知。" if changed else f"您未订阅{brand.name}。")
    changed = subscriptions.subscribe(ctx.openid, brand.id, "oa_keyword", source)
    if changed:
        return replies.text(f"已订阅{brand.name}！新品上市和品牌活动会第一时间通知您。回复“退订 {brand.name}”可随时退订。")
    return replies.text(f"您已订阅{brand.name}。")


def my_subscriptions(ctx: PushContext) -> Reply:
    """The brands the shopper hears of, and the page to change them."""
    brands = subscriptions.brands_of(ctx.openid)
    link = public_url(PAGE + ("?from=menu" if not ctx.push.is_user_message else ""))
    if not brands:
        return replies.text(f"您还没有订阅品牌。回复“订阅 品牌名”即可订阅，或点击选择：\n{link}")
    names = "、".join(b.name for b in brands)
    return replies.text(f"您订阅的品牌：{names}\n管理订阅：{link}")
