"""One-key customer service: hand the conversation to a human agent."""
from __future__ import annotations

from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext


def transfer_to_agent(ctx: PushContext) -> Reply:
    """A message asking for a person goes to WeChat's customer-service system as it is."""
    return replies.transfer_to_customer_service()


def menu_contact_agent(ctx: PushContext) -> Reply:
    """The menu button cannot be transferred itself (it is an event, not a message): tell the
    shopper that their next message reaches an agent."""
    return replies.text("请直接发送您的问题，回复“人工”即可接入人工客服。")
