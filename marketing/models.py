"""The store's content (stores, brands, activities, new arrivals, discounts, uploaded images),
articles the OA shows, parametric QR codes, and the touch events the O2O funnel is built from."""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow

ARTICLE_KINDS = ("news", "activity", "brand", "new_product", "discount")


class Article(Base):
    """A piece of mall content: news, an activity, a brand recommendation, a new product, a discount."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    url: Mapped[str] = mapped_column(String(512), default="")
    image_url: Mapped[str] = mapped_column(String(512), default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    active: Mapped[bool] = mapped_column(default=True)


class StoreInfo(Base):
    """The department store's visiting information (one row per store)."""

    __tablename__ = "store_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(256))
    opening_hours: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32))


class QrCode(Base):
    """A parametric QR code made for a counter or a campaign; scans are traced back to it."""

    __tablename__ = "qr_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scene: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    permanent: Mapped[bool] = mapped_column(default=False)
    ticket: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Sent as a customer-service message after a scan, e.g. the counter's current offer.
    follow_up_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- the store's content (issue 12) ---------------------------------------------------------------

class Store(Base):
    """One store of the group: where it is (for "nearest store"), and its weekly opening hours."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(256), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    # WGS-84 degrees, as WeChat's LOCATION event and location messages report them.
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    # {"mon": ["10:00", "22:00"], ..., "sun": [...]}: a day missing means closed that weekday.
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class StoreHoursException(Base):
    """A day a store keeps other hours (a holiday, a late-night sale) or stays closed (no times)."""

    __tablename__ = "store_hours_exceptions"
    __table_args__ = (UniqueConstraint("store_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[time | None] = mapped_column(Time, nullable=True)
    closes: Mapped[time | None] = mapped_column(Time, nullable=True)
    note: Mapped[str] = mapped_column(String(128), default="")


class Brand(Base):
    """A brand with a counter in a store. `counter_code` is the counter id orders carry
    (`Order.counter`), which is how a sale is credited to a brand."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(64), default="")
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), nullable=True, index=True)
    floor: Mapped[str] = mapped_column(String(16), default="")
    counter_code: Mapped[str] = mapped_column(String(32), default="", index=True)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    logo_image_id: Mapped[int | None] = mapped_column(ForeignKey("content_images.id"), nullable=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContentImage(Base):
    """An image staff uploaded. The bytes live here (every web process serves them); once sent to
    WeChat as permanent material, its media_id and URL are kept for OA news cards."""

    __tablename__ = "content_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(128), default="")
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    wechat_media_id: Mapped[str] = mapped_column(String(128), default="")
    wechat_url: Mapped[str] = mapped_column(String(512), default="")
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Publication states of activities, new arrivals and discounts. `scheduled` waits for publish_at;
# a published item with unpublish_at is taken down by the scheduler at that time.
DRAFT, SCHEDULED, PUBLISHED, UNPUBLISHED = "draft", "scheduled", "published", "unpublished"
PUBLICATION_STATES = (DRAFT, SCHEDULED, PUBLISHED, UNPUBLISHED)


class _Publishable:
    """The columns every published item shares."""

    status: Mapped[str] = mapped_column(String(12), default=DRAFT, index=True)
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unpublish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Activity(_Publishable, Base):
    """An event or promotion in a store: when, where, which brands take part."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(256), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), nullable=True, index=True)
    place: Mapped[str] = mapped_column(String(128), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cover_image_id: Mapped[int | None] = mapped_column(ForeignKey("content_images.id"), nullable=True)


class ActivityBrand(Base):
    """Which brands take part in an activity (its subscribers hear of it)."""

    __tablename__ = "activity_brands"

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), primary_key=True, index=True)


class NewArrival(_Publishable, Base):
    """A new product at a brand's counter."""

    __tablename__ = "new_arrivals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), index=True)
    product: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    price_fen: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("content_images.id"), nullable=True)


class Discount(_Publishable, Base):
    """A discount or coupon offer announced to everyone (a brand's, or store-wide when brand_id is None)."""

    __tablename__ = "discounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id"), nullable=True, index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), nullable=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("content_images.id"), nullable=True)


# -- the O2O funnel's raw events ------------------------------------------------------------------

# What a touch can be, in funnel order. `key` makes a touch idempotent: the same QR push, page
# view or payment recorded twice (a retried push, a replayed notification) stays one row.
TOUCH_KINDS = ("scan", "follow", "member", "page_view", "brand_subscribe", "reservation", "check_in",
               "coupon_redeem", "payment", "refund")


class Touch(Base):
    """One online or offline touch of a shopper: who (member, or openid before there is one),
    what kind, which campaign (QR scene or campaign key) and brand it concerns, and for a payment
    its amount. Append-only; the funnel report reads nothing else."""

    __tablename__ = "touches"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        Index("ix_touches_occurred_at_kind", "occurred_at", "kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(96), nullable=True)
    openid: Mapped[str] = mapped_column(String(64), default="", index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True, index=True)
    campaign: Mapped[str] = mapped_column(String(64), default="", index=True)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id"), nullable=True, index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Where it happened: the counter (Order.counter) of a payment, the resource's counter of a
    # check-in; "" online. A payment at a counter is a visit (marketing.funnel).
    counter: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # A refund names the payment it takes back from (that payment's key, the out_trade_no).
    ref: Mapped[str] = mapped_column(String(96), default="", server_default="")


# -- brand subscriptions --------------------------------------------------------------------------

# Where a shopper subscribed or unsubscribed: an OA keyword or menu, the mini-program, an H5 page,
# or staff in the console (on the shopper's word).
SUBSCRIPTION_CHANNELS = ("oa_keyword", "oa_menu", "mp", "h5", "console")
SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"


class BrandSubscription(Base):
    """Whether a shopper (by the openid they subscribed with) hears of a brand's news now. One row
    per (openid, brand), flipped by subscribe/unsubscribe; the ledger below keeps every change."""

    __tablename__ = "brand_subscriptions"
    __table_args__ = (UniqueConstraint("openid", "brand_id"),
                      Index("ix_brand_subscriptions_brand_openid", "brand_id", "openid"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"))
    active: Mapped[bool] = mapped_column(default=True)
    channel: Mapped[str] = mapped_column(String(16))  # of the latest change
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BrandSubscriptionChange(Base):
    """The consent ledger: one row per real change (a repeated subscribe writes none). Append-only."""

    __tablename__ = "brand_subscription_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"), index=True)
    action: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(128), default="")  # e.g. the keyword typed, staff:3
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


ANNOUNCEMENT_KINDS = ("new_arrival", "activity")


class Announcement(Base):
    """One item's news going out to its brands' subscribers (once per (kind, item)), with its
    progress: chunks planned/done and the count of deliveries by outcome."""

    __tablename__ = "brand_announcements"
    __table_args__ = (UniqueConstraint("kind", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(64), default="")
    brand_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    subscribers: Mapped[int] = mapped_column(Integer, default=0)  # active when announced
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)  # estimated when announced, exact once the last is cut
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # delivery status -> how many
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AnnouncementChunk(Base):
    """One unit of work of an announcement: the subscribers whose openid is after `after_key`, up
    to `last_key` (fixed when the chunk is first claimed, so a rerun covers the same shoppers)."""

    __tablename__ = "brand_announcement_chunks"
    __table_args__ = (UniqueConstraint("announcement_id", "seq"), Index("ix_brand_announcement_chunks_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("brand_announcements.id"))
    seq: Mapped[int] = mapped_column(Integer)
    after_key: Mapped[str] = mapped_column(String(64), default="")
    last_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    final: Mapped[bool] = mapped_column(default=False)  # no subscribers after this one
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|waiting|running|done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # after quiet hours
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # the lease, renewed as it sends
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BrandNewsDelivery(Base):
    """What one shopper got of one item: unique per (openid, kind, item_id), so a retried or rerun
    chunk never sends twice. `status` is sending (claimed), sent, failed, unknown, or skipped:<why>."""

    __tablename__ = "brand_news_deliveries"
    __table_args__ = (UniqueConstraint("openid", "kind", "item_id"),
                      Index("ix_brand_news_deliveries_announcement_status", "announcement_id", "status"),
                      Index("ix_brand_news_deliveries_openid_created", "openid", "created_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("brand_announcements.id"))
    openid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    brand_id: Mapped[int | None] = mapped_column(ForeignKey("brands.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(12), default="")  # template | subscribe
    to_openid: Mapped[str] = mapped_column(String(64), default="")
    wechat_errcode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
