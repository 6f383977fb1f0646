"""The desk's daily figures against a hand-computed fixture: store days (Asia/Shanghai), first
response by the day queued, resolution and ratings by the day resolved, zeros on quiet days."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone

import pytest

from service_desk import metrics
from service_desk.models import ASSIGNED, BOT, RESOLVED
from tests.integration.desk_read_helpers import conv
from tests.integration.members_helpers import uow
from tests.integration.test_service_desk import make_agent, make_team


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def fixture(app):
    team = make_team(app)
    lin, mei = make_agent(app, team, "lin"), make_agent(app, team, "mei")
    # 10 March in Shanghai is 9 March 16:00 UTC to 10 March 16:00 UTC.
    conv(app, "o1", team_id=team, status=RESOLVED, assignee=lin, created_at=utc(10, 2),
         first_response_at=utc(10, 2, 1), resolved_at=utc(10, 2, 30), csat=5)  # 60 s, 1,800 s
    conv(app, "o2", team_id=team, status=RESOLVED, assignee=mei, created_at=utc(10, 3),
         first_response_at=utc(10, 3, 3), resolved_at=utc(10, 4), csat=3)  # 180 s, 3,600 s
    conv(app, "o3", team_id=team, status=ASSIGNED, assignee=lin, created_at=utc(10, 5),
         first_response_at=utc(10, 5, 10))  # 600 s, still open
    conv(app, "o4", team_id=team, status=RESOLVED, assignee=lin, created_at=utc(10, 15, 30),  # 23:30 on the 10th
         first_response_at=utc(10, 15, 32), resolved_at=utc(10, 16, 30), csat=4)  # 120 s; resolved 00:30 the 11th
    conv(app, "o5", team_id=None, status=BOT, created_at=utc(10, 17))  # 01:00 on the 11th, the FAQ only
    conv(app, "o6", team_id=team, status=RESOLVED, assignee=mei, created_at=utc(9, 15),  # 23:00 on the 9th
         first_response_at=utc(9, 15, 5), resolved_at=utc(10, 6))  # 54,000 s to resolve, on the 10th
    return {"lin": lin, "mei": mei}


def test_daily_figures_match_the_hand_computed_ones(app, fixture):
    with uow(app):
        days = metrics.daily(date(2024, 3, 10), date(2024, 3, 12))
    assert [d.as_dict() for d in days] == [
        {"day": "2024-03-10", "opened": 4, "resolved": 3, "first_response_avg_s": 240.0,
         "first_response_p50_s": 150.0, "resolution_avg_s": 19800.0, "csat_avg": 4.0, "csat_count": 2},
        {"day": "2024-03-11", "opened": 1, "resolved": 1, "first_response_avg_s": None,
         "first_response_p50_s": None, "resolution_avg_s": 3600.0, "csat_avg": 4.0, "csat_count": 1},
        {"day": "2024-03-12", "opened": 0, "resolved": 0, "first_response_avg_s": None,
         "first_response_p50_s": None, "resolution_avg_s": None, "csat_avg": None, "csat_count": 0}]
    with uow(app):
        [ninth] = metrics.daily(date(2024, 3, 9), date(2024, 3, 9))
    assert (ninth.opened, ninth.resolved, ninth.first_response_avg_s) == (1, 0, 300.0)
    with pytest.raises(ValueError), uow(app):
        metrics.daily(date(2024, 3, 12), date(2024, 3, 10))


def test_per_agent_figures_cover_what_each_resolved_in_the_range(app, fixture):
    with uow(app):
        assert metrics.per_agent(date(2024, 3, 10), date(2024, 3, 11)) == [
            {"agent_id": fixture["lin"], "agent_name": "Lin", "resolved": 2, "first_response_avg_s": 90.0,
             "csat_avg": 4.5, "csat_count": 2},
            {"agent_id": fixture["mei"], "agent_name": "Mei", "resolved": 2, "first_response_avg_s": 240.0,
             "csat_avg": 3.0, "csat_count": 1}]
        assert metrics.per_agent(date(2024, 3, 11), date(2024, 3, 11)) == [
            {"agent_id": fixture["lin"], "agent_name": "Lin", "resolved": 1, "first_response_avg_s": 120.0,
             "csat_avg": 4.0, "csat_count": 1}]


def test_the_chart_of_a_real_range_is_one_svg_with_a_bar_per_day(app, fixture):
    with uow(app):
        days = metrics.daily(date(2024, 3, 1), date(2024, 3, 31))
    root = ET.fromstring(metrics.chart_svg(days))
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    assert len([r for r in rects if r.get("class") == "bar-opened"]) == 31
    assert len([r for r in rects if r.get("class") == "bar-resolved"]) == 31
