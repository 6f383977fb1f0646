"""Demo content: two Shanghai stores (invented addresses and coordinates) with weekly hours and
one exception day, six brands (兰蔻 at the demo's LANCOME counter, the brands of the demo's held
goods at FASHION), an activity this week with two brands, three new arrivals and a discount, all
published, with simple generated pictures. Written through marketing's own verbs, so it is checked
and audited (staff none, as a CLI run) like staff's writes. Idempotent: skipped once the first
store exists. The older StoreInfo/Article demo rows stay as they are (the OA reads them today).
"""
from __future__ import annotations

import struct
import zlib
from datetime import datetime, time, timedelta

from sqlalchemy import select

from marketing import activities, brands, images, offers, publishing, stores
from marketing.models import Store
from members.ledger import SHANGHAI
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

WEEKDAY_HOURS = ["10:00", "22:00"]
WEEKEND_HOURS = ["10:00", "22:30"]
DEMO_STORES = [
    dict(code="SH-JINGAN", name="南山百货 静安店", address="上海市静安区示范路 188 号", phone="021-5555-0101",
         latitude=31.2265, longitude=121.4490, sort_order=1),
    dict(code="SH-PUDONG", name="南山百货 浦东店", address="上海市浦东新区样板大道 66 号", phone="021-5555-0202",
         latitude=31.2338, longitude=121.5187, sort_order=2),
]
# (name, English name, store index, floor, counter code, categories, description, logo colour)
DEMO_BRANDS = [
    ("兰蔻", "Lancôme", 0, "2F", "LANCOME", ["美妆", "护肤"], "法国高端护肤与彩妆品牌。", (200, 160, 170)),
    ("雅诗兰黛", "Estée Lauder", 0, "2F", "ESTEE", ["美妆", "护肤"], "小棕瓶家族与彩妆。", (60, 70, 110)),
    ("山茶花", "Camellia", 0, "4F", "FASHION", ["女装"], "羊绒大衣与通勤女装。", (150, 110, 80)),
    ("北岸", "North Shore", 0, "4F", "FASHION", ["配饰"], "羊毛围巾、帽子与手套。", (210, 200, 180)),
    ("悦动", "Yuedong Sport", 1, "6F", "SPORT", ["运动"], "跑步与户外运动装备。", (40, 140, 90)),
    ("小森林", "Little Forest", 1, "5F", "KIDS", ["童装", "玩具"], "童装与木制玩具。", (120, 170, 60)),
]


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG, made without an imaging library (demo covers and test pictures)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def _picture(rgb: tuple[int, int, int], name: str) -> int:
    return images.add_image(solid_png(360, 200, rgb), name, staff_id=None)[0].id


def load_demo_content() -> str:
    if db.session.scalar(select(Store.id).where(Store.code == DEMO_STORES[0]["code"])) is not None:
        return "content already loaded"
    hours = {day: WEEKDAY_HOURS for day in ("mon", "tue", "wed", "thu", "fri")} | {"sat": WEEKEND_HOURS, "sun": WEEKEND_HOURS}
    made = [stores.save_store({**row, "weekly_hours": hours}, staff_id=None) for row in DEMO_STORES]
    now = utcnow()
    today = now.astimezone(SHANGHAI).date()
    stores.set_hours_exception(made[0].id, today + timedelta(days=(4 - today.weekday()) % 7 + 7),
                               opens="10:00", closes="23:30", note="周五夜场 延长营业", staff_id=None)
    brand_ids = []
    for name, name_en, store, floor, counter, categories, description, colour in DEMO_BRANDS:
        brand_ids.append(brands.save_brand(
            {"name": name, "name_en": name_en, "store_id": made[store].id, "floor": floor, "counter_code": counter,
             "categories": categories, "description": description,
             "logo_image_id": _picture(colour, f"{name_en}.png")}, staff_id=None).id)
    monday = today - timedelta(days=today.weekday())
    activity = activities.save_activity({
        "title": "冬日美妆节：兰蔻 × 雅诗兰黛", "summary": "本周二楼美妆区：免费肌肤测试，满 800 送限定礼盒",
        "body": "活动期间到二楼兰蔻、雅诗兰黛专柜，即可预约免费肌肤测试；单笔满 800 元赠限定礼盒，数量有限。",
        "store_id": made[0].id, "place": "静安店 2F 中庭",
        "starts_at": datetime.combine(monday, time(10), tzinfo=SHANGHAI),
        "ends_at": datetime.combine(monday + timedelta(days=6), time(22), tzinfo=SHANGHAI),
        "brand_ids": brand_ids[:2], "cover_image_id": _picture((230, 120, 140), "beauty-week.png")}, staff_id=None)
    arrivals = [
        offers.save_new_arrival({"brand_id": brand_ids[0], "product": "小黑瓶精华 100ml 限定装", "price_fen": 146000,
                                 "description": "冬季限定大容量", "image_id": _picture((30, 30, 40), "serum.png")},
                                staff_id=None),
        offers.save_new_arrival({"brand_id": brand_ids[2], "product": "羊绒大衣 驼色", "price_fen": 329900,
                                 "description": "100% 山羊绒", "image_id": _picture((180, 140, 100), "coat.png")},
                                staff_id=None),
        offers.save_new_arrival({"brand_id": brand_ids[4], "product": "轻量跑鞋 2代", "price_fen": 69900,
                                 "description": "缓震升级", "image_id": _picture((60, 160, 200), "shoes.png")},
                                staff_id=None),
    ]
    discount = offers.save_discount({
        "title": "周末全场满 300 减 50", "description": "部分品牌除外，详见柜台", "store_id": made[0].id,
        "valid_from": monday, "valid_until": monday + timedelta(days=6),
        "image_id": _picture((240, 90, 60), "weekend-sale.png")}, staff_id=None)
    for noun, item in [("activity", activity), *(("new_arrival", a) for a in arrivals), ("discount", discount)]:
        publishing.publish_now(noun, item.id, staff_id=None, now=now)
    return (f"content: {len(made)} stores, {len(brand_ids)} brands, 1 activity, {len(arrivals)} new arrivals, "
            "1 discount (console: /console/content)")
