"""Demo data for the O2O funnel: the demo's campaign QR code and five weeks of generated shoppers' touches
(scans, follows, cards, check-ins, payments at the brands' counters, a refund), so /console/funnel
shows a real funnel on first start. Deterministic (fixed seed; times relative to now) and
idempotent: a second run adds nothing."""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from marketing import service as marketing
from marketing import touches
from marketing.models import Brand, Touch
from members.models import Member, MemberIdentity
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

SEED = 20261203
SHOPPERS = 160
# The campaign poster's code (demo_data.QR_CODES makes it; made here too if this runs alone).
CAMPAIGN = ("campaign-double12", "双十二活动海报")
# The scenes shoppers come by (the demo's own codes) and their weights.
SCENES = ((CAMPAIGN[0], 3), ("counter-cosmetics-l2", 2))
# The counters sales are made at, and their brands (as demo_content names them; made here only when
# this runs without the demo content).
BRANDS = (("LANCOME", "兰蔻"), ("ESTEE", "雅诗兰黛"), ("SPORT", "悦动"))
KEY = "demo-funnel"


def _brands() -> list[str]:
    """The demo's brand counters: an existing brand with the counter code is used as it is."""
    for code, name in BRANDS:
        if db.session.scalar(select(Brand.id).where(Brand.counter_code == code).limit(1)) is None and \
                db.session.scalar(select(Brand.id).where(Brand.name == name)) is None:
            db.session.add(Brand(name=name, counter_code=code))
    db.session.flush()
    return [code for code, _ in BRANDS]


def _member(openid: str, joined) -> int:
    found = db.session.scalar(select(MemberIdentity.member_id).where(MemberIdentity.kind == "oa",
                                                                     MemberIdentity.openid == openid))
    if found is not None:
        return found
    member = Member(level="silver", joined_at=joined)
    db.session.add(member)
    db.session.flush()
    db.session.add(MemberIdentity(member_id=member.id, kind="oa", openid=openid))
    return member.id


def load_demo_funnel() -> str:
    """The campaign code and the generated weeks; a summary line."""
    if marketing.qr_code_for_scene(CAMPAIGN[0]) is None:
        marketing.save_qr_code(CAMPAIGN[0], CAMPAIGN[1], True, f"demo-{CAMPAIGN[0]}",
                               f"http://weixin.qq.com/q/demo-{CAMPAIGN[0]}", None)
    if db.session.scalar(select(Touch.id).where(Touch.key.like(f"{KEY}:%")).limit(1)) is not None:
        return "funnel demo: already loaded"
    counters = _brands()
    rng = random.Random(SEED)
    now = utcnow()
    made = 0

    def touch(kind: str, n: int, **values) -> None:
        nonlocal made
        made += touches.record(kind, key=f"{KEY}:{kind}:{n}", **values)

    scenes, weights = [s for s, _ in SCENES], [w for _, w in SCENES]
    for n in range(SHOPPERS):
        openid = f"oDemoFunnel{n:04d}"
        scene = rng.choices(scenes, weights)[0]
        first = now - timedelta(days=rng.uniform(1, 35), minutes=rng.randrange(600))
        brand_counter = scene.split("-", 1)[1].upper() if scene.startswith("counter-") else ""
        touch("scan", n, openid=openid, campaign=scene, brand_counter=brand_counter, occurred_at=first)
        if rng.random() > 0.7:
            continue  # scanned, did not follow
        touch("follow", n, openid=openid, campaign=scene, occurred_at=first + timedelta(seconds=20))
        if rng.random() > 0.6:
            continue  # follows, never joined
        joined = first + timedelta(hours=rng.uniform(0.5, 48))
        member_id = _member(openid, joined)
        touch("member", n, openid=openid, member_id=member_id, occurred_at=joined)
        if rng.random() > 0.75:
            continue  # a member who has not come yet
        counter = rng.choice(counters)
        visit = joined + timedelta(days=rng.uniform(0.2, 9))
        if visit >= now:
            continue
        if rng.random() < 0.4:
            touch("check_in", n, openid=openid, member_id=member_id, counter=counter, brand_counter=counter,
                  occurred_at=visit)
        if rng.random() < 0.7:
            fen = rng.randrange(199, 3_000) * 100
            touch("payment", n, openid=openid, member_id=member_id, amount_fen=fen, counter=counter,
                  brand_counter=counter, occurred_at=visit + timedelta(minutes=25))
            if n % 17 == 0:
                touch("refund", n, openid=openid, member_id=member_id, amount_fen=fen // 2,
                      ref=f"{KEY}:payment:{n}", occurred_at=visit + timedelta(days=1))
    # Walk-in payers with no campaign behind them: the report's unattributed row.
    for n in range(12):
        openid = f"oDemoWalkIn{n:04d}"
        at = now - timedelta(days=rng.uniform(0.5, 27))
        counter = rng.choice(counters)
        touch("payment", 10_000 + n, openid=openid, member_id=_member(openid, at), counter=counter,
              brand_counter=counter, amount_fen=rng.randrange(99, 1_500) * 100, occurred_at=at)
    db.session.flush()
    return f"funnel demo: {made} touches"
