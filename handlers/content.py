"""Mall content on request: news, this week's activities, a brand's new arrivals, the stores' hours
today, the nearest store, help. Each answer is one or two reads in the handler's unit of work
(marketing.listings / marketing.geo); no Redis. News cards link to the OA's H5 pages."""
from __future__ import annotations

import math
from datetime import datetime

from marketing import geo, listings
from marketing import service as marketing
from marketing.models import Activity, Brand, Discount, NewArrival
from members import service as members
from wx_service.ground.extensions import settings
from wx_service.ground.links import public_url
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import MAX_ARTICLES_FOR_EVENT, MAX_ARTICLES_FOR_MESSAGE, Article, Reply
from wx_service.ground.router import PushContext

# The H5 pages the cards open (wx_service/edges/h5_content.py serves them).
ACTIVITY_PAGES = "/h5/activities"
BRAND_PAGES = "/h5/brands"
WEEKDAYS = "一二三四五六日"
SUGGESTED_BRANDS = 6
MAX_ARRIVALS_COUNTED = 20  # "新品 20+ 款" beyond: the reply reads one bounded list, no COUNT


def _limit(ctx: PushContext) -> int:
    # WeChat allows 1 article in reply to a message and 8 in reply to a menu click.
    return MAX_ARTICLES_FOR_MESSAGE if ctx.push.is_user_message else MAX_ARTICLES_FOR_EVENT


def _image(image_id: int | None) -> str:
    path = listings.image_path(image_id)
    return public_url(path) if path else ""


def _store_clock(at: datetime) -> str:
    return at.astimezone(listings.STORE_ZONE).strftime("%m月%d日 %H:%M")


def _articles(ctx: PushContext, kind: str, empty_text: str) -> Reply:
    found = marketing.latest_articles(kind, _limit(ctx))
    if not found:
        return replies.text(empty_text)
    return replies.news(*(Article(a.title, a.description, a.url, a.image_url) for a in found))


def mall_news(ctx: PushContext) -> Reply:
    return _articles(ctx, "news", "暂时没有新的商场资讯，敬请期待。")


def activity_card(activity: Activity) -> Article:
    """An activity as a news card: when, the summary, a link to its page."""
    when = f"{_store_clock(activity.starts_at)} 至 {_store_clock(activity.ends_at)}"
    description = f"{when}\n{activity.summary}" if activity.summary else when
    return Article(activity.title, description, public_url(f"{ACTIVITY_PAGES}/{activity.id}"),
                   _image(activity.cover_image_id))


def activities(ctx: PushContext) -> Reply:
    """This store-week's activities (Monday to Sunday), soonest first."""
    found = listings.activities_this_week(limit=_limit(ctx))
    if not found:
        return replies.text("本周暂无活动，敬请关注。")
    return replies.news(*(activity_card(a) for a in found))


def discount_card(discount: Discount) -> Article:
    """A discount as a news card: until when it runs, what it is; a brand's opens the brand's page."""
    until = f"{discount.valid_until:%m月%d日}前有效"
    description = f"{until}\n{discount.description}" if discount.description else until
    link = public_url(f"{BRAND_PAGES}/{discount.brand_id}") if discount.brand_id else ""
    return Article(discount.title, description, link, _image(discount.image_id))


def discounts(ctx: PushContext) -> Reply:
    """Discounts valid today (a brand's or store-wide), ending soonest first."""
    found, _ = listings.discounts(limit=_limit(ctx), count=False)
    if not found:
        return replies.text("今天暂无优惠活动，发送“活动”看看本周活动。")
    return replies.news(*(discount_card(d) for d in found))


def _price(fen: int) -> str:
    return f"¥{fen // 100}" if fen % 100 == 0 else f"¥{fen / 100:.2f}"


def _arrivals_card(brand: Brand, found: list[NewArrival], total: int) -> Article:
    """One card (a reply to a message carries one): the arrival itself, or the brand's list."""
    link = public_url(f"{BRAND_PAGES}/{brand.id}")
    first = found[0]
    if total == 1:
        text = f"{_price(first.price_fen)}　{first.description}".strip()
        return Article(f"{brand.name} 新品：{first.product}", text, link, _image(first.image_id))
    names = "、".join(f"{a.product} {_price(a.price_fen)}" for a in found[:4])
    counted = f"{total}+" if total >= MAX_ARRIVALS_COUNTED else str(total)
    return Article(f"{brand.name} 新品 {counted} 款", f"{names}…" if total > 4 else names, link,
                   _image(first.image_id or brand.logo_image_id))


def new_arrivals(ctx: PushContext) -> Reply:
    """"新品 兰蔻", "兰蔻新品", "新品 Lancome": that brand's new arrivals as a news card; an
    unknown (or missing) brand gets a few names to try."""
    name = ""
    if ctx.match is not None:
        name = next((g for g in ctx.match.groups() if g), "").strip()
    brand = listings.find_brand(name) if name else None
    if brand is None:
        known = "、".join(listings.brand_names(SUGGESTED_BRANDS))
        head = f"没有找到品牌“{name}”。" if name else "想看哪个品牌的新品？"
        tail = f"可以试试：{known}\n" if known else ""
        return replies.text(f"{head}{tail}发送“新品 品牌名”查看新品，例如“新品 {known.split('、')[0] or '兰蔻'}”。")
    found, _ = listings.new_arrivals(brand_id=brand.id, limit=MAX_ARRIVALS_COUNTED, count=False)
    total = len(found)
    if not found:
        return replies.text(f"{brand.name}暂时没有新品，敬请期待。\n品牌页：{public_url(f'{BRAND_PAGES}/{brand.id}')}")
    if _limit(ctx) == 1:
        return replies.news(_arrivals_card(brand, found, total))
    return replies.news(*(_arrivals_card(brand, [a], 1) for a in found[:MAX_ARTICLES_FOR_EVENT]))


def store_info(ctx: PushContext) -> Reply:
    """Every store's hours today (an exception's hours and note when it has one)."""
    stores = listings.stores_today()
    if not stores:
        info = marketing.store_info()  # before the stores are entered: the old visiting card
        if info is None:
            return replies.text("门店信息正在更新中。")
        return replies.text(f"{info.name}\n地址：{info.address}\n营业时间：{info.opening_hours}\n电话：{info.phone}")
    day = stores[0][1].day
    lines = [f"今日（{day:%m月%d日} 周{WEEKDAYS[day.weekday()]}）营业时间："]
    for store, hours in stores:
        lines.append(f"\n{store.name}：{hours.describe()}")
        if store.address:
            lines.append(f"地址：{store.address}")
        if store.phone:
            lines.append(f"电话：{store.phone}")
    return replies.text("\n".join(lines))


def _coordinate(value: object) -> float | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def nearest_store(ctx: PushContext) -> Reply | None:
    """A LOCATION event (Latitude/Longitude) or a location message (Location_X/Location_Y): the
    nearest store, its distance and today's hours. An event we cannot place gets no reply, and a
    LOCATION report is answered once per visit to the chat (members.claim_location_answer), since
    the phone may report every 5 seconds; a location the shopper sends is always answered."""
    fields = ctx.push.fields
    if ctx.push.is_user_message:
        lat, lng = _coordinate(fields.get("Location_X")), _coordinate(fields.get("Location_Y"))
    else:
        lat, lng = _coordinate(fields.get("Latitude")), _coordinate(fields.get("Longitude"))
    found = geo.nearest_store(lat, lng) if lat is not None and lng is not None else None
    if found is None:
        return replies.text("暂时无法根据位置查找门店，发送“门店”查看全部门店。") if ctx.push.is_user_message else None
    if not ctx.push.is_user_message and not members.claim_location_answer(ctx.openid, ctx.created_at):
        return None
    store, hours = found.store, found.hours
    lines = [f"离您最近的门店：{store.name}", f"距离约 {found.km:.1f} 公里", f"今日营业：{hours.describe()}"]
    if store.address:
        lines.append(f"地址：{store.address}")
    if store.phone:
        lines.append(f"电话：{store.phone}")
    return replies.text("\n".join(lines))


def help_text(ctx: PushContext) -> Reply | None:
    """The reply for anything unrecognised. Events nobody routed (VIEW, ...) get none."""
    if not ctx.push.is_user_message:
        return None
    return replies.text(settings().HELP_TEXT)
