"""Subscribe-message consents pushed by WeChat (reference §3.3): `subscribe_msg_popup_event`, one
`List` per template the popup showed, each `accept` or `reject`. Every accept is one message we
may send (§7.7), so each becomes a grant; the push gets no passive reply (WeChat shows none).

One domain statement per push, an INSERT of the accepted templates' grants: the webhook's round
trips stay as they were (a popup that was all rejects writes nothing). A retry of the push is
answered from its record without running this again, so an accept is never counted twice."""
from __future__ import annotations

from typing import Any

from members import consents
from wx_service.ground.router import PushContext

ACCEPT = "accept"
SOURCE = "popup_event"


def _items(block: Any) -> list[dict[str, Any]]:
    """The `List` entries of the event's block: one (a dict) or several (a list), XML or JSON."""
    if not isinstance(block, dict):
        return []
    items = block.get("List")
    if isinstance(items, dict):
        items = [items]
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def accepted_templates(fields: dict[str, Any]) -> list[str]:
    """The template ids the shopper accepted in this popup, in the order shown."""
    found = []
    for item in _items(fields.get("SubscribeMsgPopupEvent")):
        template_id, status = item.get("TemplateId"), item.get("SubscribeStatusString")
        if isinstance(template_id, str) and template_id.strip() and isinstance(status, str) \
                and status.strip().lower() == ACCEPT:
            found.append(template_id.strip()[:64])
    return found


def on_popup(ctx: PushContext) -> None:
    """Record one grant per accepted template for the shopper who answered the popup."""
    accepted = accepted_templates(ctx.push.fields)
    if accepted:
        consents.record_grants(ctx.openid, accepted, source=SOURCE)
    return None
