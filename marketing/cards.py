"""How a published item reads as an OA news card (a news article: title, description, cover):
the one mapping the console's preview and the OA's replies share."""
from __future__ import annotations

from dataclasses import dataclass

from marketing.models import Activity, Brand, Discount, NewArrival
from wx_service.ground.extensions import db

# WeChat cuts a news card's title and description; keep previews honest about what shows.
TITLE_MAX = 64
DESCRIPTION_MAX = 120


@dataclass(frozen=True)
class NewsCard:
    title: str
    description: str
    image_id: int | None


def yuan(fen: int) -> str:
    return f"¥{fen // 100}" if fen % 100 == 0 else f"¥{fen / 100:.2f}"


def news_card(item: Activity | NewArrival | Discount) -> NewsCard:
    """The card for an activity, a new arrival or a discount."""
    if isinstance(item, Activity):
        description = item.summary or item.body
        return NewsCard(item.title[:TITLE_MAX], description[:DESCRIPTION_MAX], item.cover_image_id)
    if isinstance(item, NewArrival):
        brand = db.session.get(Brand, item.brand_id)
        title = f"{brand.name if brand else ''} 新品：{item.product}"
        description = " ".join(part for part in (item.description, yuan(item.price_fen)) if part)
        return NewsCard(title[:TITLE_MAX], description[:DESCRIPTION_MAX], item.image_id)
    valid = f"{item.valid_from:%m月%d日}至{item.valid_until:%m月%d日}"
    description = " ".join(part for part in (item.description, valid) if part)
    return NewsCard(item.title[:TITLE_MAX], description[:DESCRIPTION_MAX], item.image_id)
