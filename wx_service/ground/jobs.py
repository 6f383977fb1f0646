"""Jobs that talk to WeChat on the service's behalf (answers that could not wait for a reply)."""
from __future__ import annotations

from wx_service.ground.extensions import wechat_client


def send_text(openid: str, text: str) -> None:
    """A customer-service text message, inside the shopper's interaction window."""
    wechat_client().send_custom_message({"touser": openid, "msgtype": "text", "text": {"content": text}})


def send_news(openid: str, title: str, description: str, url: str, picurl: str) -> None:
    """A customer-service news message (WeChat allows one article)."""
    wechat_client().send_custom_message({
        "touser": openid, "msgtype": "news",
        "news": {"articles": [{"title": title, "description": description, "url": url, "picurl": picurl}]},
    })


def send_card(openid: str, card_id: str) -> None:
    """A customer-service card message: the shopper taps it to claim the card."""
    wechat_client().send_custom_message({"touser": openid, "msgtype": "wxcard", "wxcard": {"card_id": card_id}})
