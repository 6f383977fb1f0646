"""The demo's funnel: on first start /console/funnel has a real funnel to show, and loading the
demo again adds nothing."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from marketing import funnel
from marketing.models import Brand, Touch
from members.audit import local_time
from tests.integration.members_helpers import uow
from wx_service.edges.demo_data import load_demo_data
from wx_service.ground.db import utcnow


def test_the_demo_fills_the_funnel_once(app):
    with uow(app):
        load_demo_data()
    with uow(app) as session:
        loaded = session.scalar(select(func.count()).select_from(Touch))
    with uow(app):
        load_demo_data()
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Touch)) == loaded > 300

    today = date.fromisoformat(local_time(utcnow())[:10])
    with uow(app):
        result = funnel.report(today - timedelta(days=27), today, view="last", grouping="campaign")
        by_brand = funnel.report(today - timedelta(days=27), today, view="first", grouping="brand")
    poster = next(r for r in result.rows if r.key == "campaign-double12")
    assert poster.label == "双十二活动海报 (campaign-double12)"
    assert poster.scans > poster.follows > poster.members > 0
    assert poster.visits > 0 and poster.paying > 0 and poster.sales_fen > 0
    assert result.rows[-1].key == "" and result.rows[-1].paying > 0  # the walk-in payers
    assert {r.label for r in by_brand.rows} >= {"兰蔻", "雅诗兰黛", "悦动"}  # the demo content's brands, not copies
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Brand).where(Brand.name == "兰蔻")) == 1
