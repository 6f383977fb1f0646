"""The OA's way in to reservations (issue 11): 预约 / 预订 answers with a link to the H5 pages
where a shopper books a service or holds goods to try on. No database, no Redis: it costs what a
plain keyword reply costs."""
from __future__ import annotations

from wx_service.ground.links import public_url
from wx_service.ground.protocol import replies
from wx_service.ground.protocol.replies import Reply
from wx_service.ground.router import PushContext

# The H5 reservation pages (wx_service/edges/h5_reservations.py); config/menu.json's 预约服务 button too.
RESERVATION_PAGES = "/h5/reservations"


def reservation_link(ctx: PushContext) -> Reply:
    """A text reply with the pages' absolute link (WeChat makes a bare URL in a text tappable)."""
    return replies.text(f"预约到店服务、保留商品到店试用，请点击：\n{public_url(RESERVATION_PAGES)}")
