"""Every route the service answers, in one table. Grep here for a key, a keyword or an event."""
from __future__ import annotations

from handlers import brand_subscriptions, cards, content, customer_service, follow, reservations, subscriptions
from wx_service.ground.router import Router

# Menu keys, also used in config/menu.json.
MENU_MALL_NEWS = "MALL_NEWS"
MENU_ACTIVITIES = "ACTIVITIES"
MENU_STORE_INFO = "STORE_INFO"
MENU_CUSTOMER_SERVICE = "CUSTOMER_SERVICE"
MENU_MY_MEMBERSHIP = "MY_MEMBERSHIP"
MENU_MY_BRANDS = "MY_BRANDS"


def build_router() -> Router:
    router = Router()

    # Events
    router.event("subscribe", follow.on_subscribe)  # also follows via QR (scene in ctx.scene)
    router.event("unsubscribe", follow.on_unsubscribe)
    router.event("scan", follow.on_scan)
    router.event("user_enter_tempsession", customer_service.mini_program_contact)  # MP contact button
    router.event("subscribe_msg_popup_event", subscriptions.on_popup)  # one-time consents (reference §3.3)
    router.event("location", content.nearest_store)  # LOCATION: Latitude/Longitude (reference §3.3)

    # Member card events (reference §3.4)
    router.event("user_get_card", cards.on_user_get_card)
    router.event("submit_membercard_user_info", cards.on_submit_user_info)
    router.event("user_view_card", cards.on_user_view_card)
    router.event("user_del_card", cards.on_user_del_card)
    router.event("update_member_card", cards.on_update_member_card)
    router.event("user_consume_card", cards.on_user_consume_card)
    router.event("card_pass_check", cards.on_card_pass_check)
    router.event("card_not_pass_check", cards.on_card_not_pass_check)

    # Menu buttons (CLICK)
    router.click(MENU_MALL_NEWS, content.mall_news)
    router.click(MENU_ACTIVITIES, content.activities)
    router.click(MENU_STORE_INFO, content.store_info)
    router.click(MENU_CUSTOMER_SERVICE, customer_service.menu_contact_agent)
    router.click(MENU_MY_MEMBERSHIP, cards.my_membership)
    router.click(MENU_MY_BRANDS, brand_subscriptions.my_subscriptions)

    # Keywords (exact, case-insensitive)
    for word in ("帮助", "help", "?", "？"):
        router.keyword(word, content.help_text)
    for word in ("新闻", "资讯", "news"):
        router.keyword(word, content.mall_news)
    for word in ("活动", "本周活动"):
        router.keyword(word, content.activities)
    for word in ("优惠", "折扣", "今日优惠"):
        router.keyword(word, content.discounts)
    router.keyword("新品", content.new_arrivals)  # no brand: a few names to try
    for word in ("门店", "地址", "营业时间"):
        router.keyword(word, content.store_info)
    for word in ("会员", "我的会员", "积分"):
        router.keyword(word, cards.my_membership)
    for word in ("预约", "预订"):
        router.keyword(word, reservations.reservation_link)
    router.keyword("我的订阅", brand_subscriptions.my_subscriptions)

    # Patterns
    router.regex(brand_subscriptions.PATTERN, brand_subscriptions.on_keyword)  # 订阅 兰蔻 / 退订 兰蔻
    router.regex(r"人工|客服|投诉", customer_service.contact_agent)
    router.regex(r"^[1-5]分", customer_service.rate_service)  # a tap on the rating menu
    # 新品 兰蔻 / 兰蔻新品 / 新品 Lancome (after 人工|客服|投诉: "投诉新品" is a complaint)
    router.regex(r"^新品\s*(.{1,40})$|^(.{1,40}?)\s*新品$", content.new_arrivals)

    # Other message types
    router.message("location", content.nearest_store)  # Location_X/Location_Y

    # A shopper in a customer-service conversation: the desk first (ctx.fallback otherwise)
    router.conversation(customer_service.in_conversation)

    # Anything else
    router.default(content.help_text)
    return router
