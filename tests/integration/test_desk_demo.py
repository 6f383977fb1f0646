"""The demo's desk: a team, two agents who can sign in, the FAQ and shared canned replies, loaded
twice without doubling."""
from __future__ import annotations

from sqlalchemy import func, select

from members import staff as staff_service
from service_desk import faq
from service_desk.models import Agent, CannedReply, FaqEntry, Team
from tests.integration.members_helpers import uow
from wx_service.edges.demo_data import DEMO_AGENTS, load_demo_desk


def test_the_demo_desk_loads_once_and_answers_the_usual_questions(app):
    for _ in range(2):
        with uow(app):
            line = load_demo_desk()
    assert "kefu1 / kefu1-pass-1234" in line
    with uow(app) as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        assert (count(Team), count(Agent), count(FaqEntry), count(CannedReply)) == (1, 2, 4, 3)
        for username, _, password in DEMO_AGENTS:
            assert staff_service.authenticate(username, password) is not None
        for question, topic in (("停车要钱吗", "停车"), ("你们几点开门", "营业"), ("我想退货", "退换"), ("积分怎么用", "积分")):
            assert topic in faq.answer_for(question).question or topic in faq.answer_for(question).answer
