"""The demo's brand subscriptions (issue 12): the demo members follow a few brands, so a new
arrival announced in the demo (`flask --app wsgi brand-news announce new_arrival <id>` or the
console's brand-news page) has someone to reach. The brands are the content demo's
(demo_content.py); one missing here is created by name, so either loader may run first."""
from __future__ import annotations

from sqlalchemy import select

from marketing import subscriptions
from marketing.models import Brand
from wx_service.ground.extensions import db

# (name, English name, counter code): looked up by name, created only when missing.
DEMO_BRANDS = (("兰蔻", "Lancome", "LANCOME"), ("雅诗兰黛", "Estee Lauder", "ESTEE"), ("迪奥", "Dior", "DIOR"))
# Which demo member (demo_data.load_demo_members' openids) follows which brands, and from where.
DEMO_SUBSCRIPTIONS = (("oDemoMemberSilver", ("兰蔻",), "oa_keyword"),
                      ("oDemoMemberGold", ("兰蔻", "雅诗兰黛"), "h5"),
                      ("oDemoMemberPlatinum", ("迪奥",), "oa_menu"),
                      ("oDemoMemberDiamond", ("兰蔻", "雅诗兰黛", "迪奥"), "h5"))


def load_demo_subscriptions() -> str:
    """Idempotent: a second run subscribes nobody twice (and writes no ledger rows)."""
    ids: dict[str, int] = {}
    for name, name_en, counter in DEMO_BRANDS:
        brand = db.session.scalar(select(Brand).where(Brand.name == name))
        if brand is None:
            brand = Brand(name=name, name_en=name_en, counter_code=counter)
            db.session.add(brand)
            db.session.flush()
        ids[name] = brand.id
    made = 0
    for openid, names, channel in DEMO_SUBSCRIPTIONS:
        for name in names:
            made += subscriptions.subscribe(openid, ids[name], channel, "demo data")
    return f"{made} brand subscriptions"
