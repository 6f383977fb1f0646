"""The customer-service desk's ownership rules: one open conversation per shopper, exactly one
owner when agents race, caps that hold under concurrent offers, offers that time out go to the
next agent, and resolving frees the agent."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from members import staff as staff_service
from service_desk import service
from service_desk.exceptions import AlreadyTaken, AtCapacity
from service_desk.models import ASSIGNED, OFFERED, QUEUED, RESOLVED, Agent, Conversation, Team
from tests.conftest import requires_postgres
from tests.integration.members_helpers import make_staff, uow
from wx_service.ground.db import utcnow


def make_team(app, code: str = "1F-cosmetics", name: str | None = None) -> int:
    with uow(app) as session:
        team = Team(code=code, name=name or code)
        session.add(team)
        session.flush()
        return team.id


def make_agent(app, team_id: int, name: str, *, status: str = "online", max_open: int = 5,
               password: str | None = None) -> int:
    """A staff member with an agent row (and a console password when given); the agent id."""
    staff_id = make_staff(app, name, password or "")
    with uow(app) as session:
        staff_service.grant_role(name, staff_service.AGENT)  # as roster.add_agent does
        agent = Agent(staff_id=staff_id, team_id=team_id, status=status, max_open=max_open, open_load=0)
        session.add(agent)
        session.flush()
        return agent.id


def queued(app, openid: str, team: str | None = "1F-cosmetics") -> int:
    with uow(app):
        conversation = service.open_conversation(openid, "keyword", team_code=team)
        service.queue(conversation.id)
        return conversation.id


def state(app, conversation_id: int) -> tuple[str, int | None]:
    with uow(app) as session:
        conversation = session.get(Conversation, conversation_id)
        return conversation.status, conversation.assignee_id


def loads(app) -> dict[int, int]:
    with uow(app) as session:
        return {agent_id: load for agent_id, load in session.execute(select(Agent.id, Agent.open_load))}


def test_a_shopper_has_one_open_conversation_and_a_new_one_after_it_is_resolved(app):
    team = make_team(app)
    agent = make_agent(app, team, "lin")
    with uow(app):
        first = service.open_conversation("oShopper1", "menu", team_code="1F-cosmetics").id
        assert service.open_conversation("oShopper1", "keyword").id == first  # a second 人工 joins it
    service_queue_take_resolve(app, first, agent)
    with uow(app):
        assert service.open_conversation("oShopper1", "keyword").id != first


def service_queue_take_resolve(app, conversation_id: int, agent_id: int) -> None:
    with uow(app):
        service.queue(conversation_id)
        service.take(conversation_id, agent_id)
        service.resolve(conversation_id, agent_id)


def test_taking_from_the_queue_is_first_come_and_counts_against_the_cap(app):
    team = make_team(app)
    lin = make_agent(app, team, "lin", max_open=1)
    mei = make_agent(app, team, "mei")
    one, two = queued(app, "oA"), queued(app, "oB")
    with uow(app):
        assert service.take(one, lin).status == ASSIGNED
    with pytest.raises(AlreadyTaken), uow(app):
        service.take(one, mei)
    with pytest.raises(AtCapacity), uow(app):
        service.take(two, lin)  # lin holds one already, cap 1
    assert state(app, two) == (QUEUED, None)  # refused, nothing changed
    assert loads(app) == {lin: 1, mei: 0}  # mei's failed take left her load as it was
    with uow(app):
        service.resolve(one, lin)
    assert state(app, one)[0] == RESOLVED and loads(app)[lin] == 0


def test_an_offer_goes_to_the_least_loaded_online_agent_of_the_team_and_times_out_to_the_next(app):
    team, other_team = make_team(app), make_team(app, "B1-watches")
    busy = make_agent(app, team, "busy")
    idle = make_agent(app, team, "idle")
    make_agent(app, team, "away", status="away")
    make_agent(app, other_team, "elsewhere")
    warm = queued(app, "oWarm")
    with uow(app):
        service.take(warm, busy)  # busy now holds one
    conversation = queued(app, "oNew")
    with uow(app):
        assert service.offer_next(conversation).id == idle
    assert state(app, conversation) == (OFFERED, idle) and loads(app)[idle] == 1
    with uow(app):
        late = utcnow() + timedelta(seconds=31)
        assert service.offers_older_than(30, now=late) == [(conversation, idle)]
        assert service.expire_offer(conversation, idle) is True
    assert state(app, conversation) == (QUEUED, None) and loads(app)[idle] == 0
    with uow(app):  # idle let it time out: it goes to busy now, though busy holds more
        assert service.offer_next(conversation).id == busy
    with uow(app):
        assert service.take(conversation, busy).status == ASSIGNED  # opening one's own offer
        assert service.expire_offer(conversation, busy) is False  # too late to expire: nothing changes
    assert loads(app)[busy] == 2


def test_nobody_online_leaves_the_conversation_queued(app):
    team = make_team(app)
    make_agent(app, team, "away", status="away")
    conversation = queued(app, "oAlone")
    with uow(app):
        assert service.offer_next(conversation) is None
    assert state(app, conversation) == (QUEUED, None)


@requires_postgres
def test_twenty_agents_taking_one_conversation_at_once_leave_exactly_one_owner(app):
    team = make_team(app)
    agents = [make_agent(app, team, f"agent{n}") for n in range(20)]
    conversation = queued(app, "oRace")
    start = threading.Barrier(20)

    def take(agent_id: int) -> str:
        start.wait()
        try:
            with uow(app):
                service.take(conversation, agent_id)
            return "won"
        except AlreadyTaken:
            return "lost"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(take, agents))
    assert outcomes.count("won") == 1
    status, owner = state(app, conversation)
    assert status == ASSIGNED and owner == agents[outcomes.index("won")]
    assert sum(loads(app).values()) == 1  # the nineteen losers' load increments were rolled back


@requires_postgres
def test_a_thousand_offers_across_ten_agents_never_pass_a_cap(app):
    team = make_team(app)
    agents = [make_agent(app, team, f"agent{n}", max_open=60) for n in range(10)]
    conversations = [queued(app, f"oMany{n:04d}") for n in range(1000)]

    def offer(conversation_id: int) -> bool:
        for _attempt in range(3):
            try:
                with uow(app):
                    return service.offer_next(conversation_id) is not None
            except Exception as exc:  # a serialization hiccup is retried; anything else fails the test
                if "deadlock" not in str(exc).lower():
                    raise
        raise AssertionError("deadlocked three times")

    with ThreadPoolExecutor(8) as pool:
        offered = sum(pool.map(offer, conversations))
    per_agent = loads(app)
    assert max(per_agent.values()) <= 60
    assert offered == sum(per_agent.values()) == 600  # every agent filled to the cap, no further
    with uow(app) as session:
        held = {agent_id: n for agent_id, n in session.execute(select(Conversation.assignee_id, func.count()).where(
            Conversation.status == OFFERED).group_by(Conversation.assignee_id))}
    assert held == per_agent  # the load cache equals the conversations each agent holds
    assert all(per_agent[a] == 60 for a in agents)


def test_the_sweep_moves_a_lapsed_offer_to_the_next_agent_and_leaves_fresh_ones(app):
    from service_desk import jobs

    team = make_team(app)
    first = make_agent(app, team, "first")
    second = make_agent(app, team, "second")
    lapsed, fresh = queued(app, "oLapsed"), queued(app, "oFresh")
    with uow(app):
        assert service.offer_next(lapsed).id == first
    with uow(app):
        assert service.offer_next(fresh).id == second
    with uow(app) as session:  # the first offer is old now
        session.get(Conversation, lapsed).offered_at = utcnow() - timedelta(seconds=46)
    with uow(app):
        assert jobs.sweep_offers() == 1
    assert state(app, lapsed) == (OFFERED, second) and state(app, fresh) == (OFFERED, second)
    assert loads(app) == {first: 0, second: 2}
    with uow(app):
        assert jobs.sweep_offers() == 0  # run again (a second scheduler): nothing more moves
