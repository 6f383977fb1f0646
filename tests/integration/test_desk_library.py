"""What staff keep as data: FAQ entries and canned replies (validated, clashes refused, another
agent's own replies out of reach), and the search over past conversations (literal, escaped)."""
from __future__ import annotations

import pytest

from service_desk import faq, library
from service_desk.exceptions import BadEntry, UnknownEntry
from service_desk.faq import BadPattern
from service_desk.models import NOTE, OUT, RESOLVED
from tests.integration.desk_read_helpers import T0, agent, conv, minutes, push, say
from tests.integration.members_helpers import uow
from tests.integration.test_service_desk import make_agent, make_team


@pytest.fixture
def desk(app):
    team = make_team(app, "1F-cosmetics")
    return {"team": team, "lin": make_agent(app, team, "lin"), "mei": make_agent(app, team, "mei")}


def faq_entry(**overrides):
    fields = dict(question="停车", pattern="停车|车位", is_regex=False, answer="B2 停车场，会员免费 2 小时。",
                  priority=0, active=True)
    return {**fields, **overrides}


def test_faq_entries_are_validated_saved_in_priority_order_and_used_by_the_bot(app):
    with uow(app):
        parking = library.save_faq(None, **faq_entry()).id
        hours = library.save_faq(None, **faq_entry(question="营业时间", pattern=r"几点(开|关)门", is_regex=True,
                                                   answer="10:00–22:00", priority=5)).id
    with uow(app):
        assert [e.id for e in library.list_faq()] == [hours, parking]
        assert faq.answer_for("你们几点关门").answer == "10:00–22:00"
        library.save_faq(parking, **faq_entry(answer="B2 停车场", priority=9, active=False))
    with uow(app):
        assert [(e.id, e.answer, e.active) for e in library.list_faq()] == [(parking, "B2 停车场", False),
                                                                           (hours, "10:00–22:00", True)]
        assert faq.answer_for("停车") is None  # inactive now
    bad = [dict(pattern="(", is_regex=True), dict(pattern=" | "), dict(pattern="")]
    for fields in bad:
        with pytest.raises(BadPattern), uow(app):
            library.save_faq(None, **faq_entry(**fields))
    for fields in (dict(question=""), dict(question="问" * 129), dict(answer="  "), dict(answer="答" * 2001),
                   dict(priority="high")):
        with pytest.raises(BadEntry), uow(app):
            library.save_faq(None, **faq_entry(**fields))
    with pytest.raises(UnknownEntry), uow(app):
        library.save_faq(999, **faq_entry())
    with uow(app):
        library.delete_faq(hours)
    with uow(app):
        assert [e.id for e in library.list_faq()] == [parking]
    with pytest.raises(UnknownEntry), uow(app):
        library.delete_faq(hours)


def test_canned_replies_shared_and_own_with_the_agents_own_winning(app, desk):
    lin, mei = desk["lin"], desk["mei"]
    with uow(app) as session:
        shared = library.save_canned(agent(session, lin), None, shortcut="/hours", body="10:00–22:00", shared=True).id
        own = library.save_canned(agent(session, lin), None, shortcut="/HOURS ", body="我在 1F", shared=False).id
        meis = library.save_canned(agent(session, mei), None, shortcut="/mine", body="mei's", shared=False).id
    with uow(app) as session:
        me, her = agent(session, lin), agent(session, mei)
        assert [(r.id, r.shortcut) for r in library.canned_for(me)] == [(own, "/hours"), (shared, "/hours")]
        assert [r.id for r in library.canned_for(her)] == [shared, meis]
        assert library.expand(me, "/hours") == "我在 1F" and library.expand(her, "/hours") == "10:00–22:00"
        assert library.expand(me, "/mine") is None and library.expand(her, "/mine") == "mei's"
    for shortcut in ("hours", "/", "/a b", "/" + "x" * 32, "/中文"):
        with pytest.raises(BadEntry), uow(app) as session:
            library.save_canned(agent(session, lin), None, shortcut=shortcut, body="x", shared=True)
    for body in ("", "x" * 2001):
        with pytest.raises(BadEntry), uow(app) as session:
            library.save_canned(agent(session, lin), None, shortcut="/ok", body=body, shared=True)
    with pytest.raises(BadEntry, match="shortcut already used"), uow(app) as session:
        library.save_canned(agent(session, mei), None, shortcut="/hours", body="again", shared=True)
    with pytest.raises(BadEntry, match="shortcut already used"), uow(app) as session:
        library.save_canned(agent(session, mei), meis, shortcut="/hours", body="again", shared=True)
    # mei may edit the shared reply, never lin's own (answered as if it did not exist)
    with uow(app) as session:
        library.save_canned(agent(session, mei), shared, shortcut="/hours", body="10:00–21:30", shared=True)
    with pytest.raises(UnknownEntry), uow(app) as session:
        library.save_canned(agent(session, mei), own, shortcut="/hours", body="taken over", shared=False)
    with pytest.raises(UnknownEntry), uow(app) as session:
        library.delete_canned(agent(session, mei), own)
    with uow(app) as session:
        library.delete_canned(agent(session, lin), own)
    with uow(app) as session:
        assert library.expand(agent(session, lin), "/hours") == "10:00–21:30"


def test_search_is_literal_case_insensitive_and_shows_the_match_in_context(app, desk):
    team, lin = desk["team"], desk["lin"]
    sale = conv(app, "oSaleShopper0001", team_id=team, status=RESOLVED, assignee=lin, resolved_at=T0 + minutes(9))
    push(app, sale, "oSaleShopper0001", "is it really 100% off? " + "x" * 50, T0)
    push(app, sale, "oSaleShopper0001", "code A_B please", T0 + minutes(1))
    push(app, sale, "oSaleShopper0001", "code AXB please", T0 + minutes(2))
    say(app, sale, OUT, "Hello, the 100% offer ended yesterday", T0 + minutes(3), agent_id=lin)
    say(app, sale, NOTE, "she asked about 100 percent", T0 + minutes(4), agent_id=lin)
    other = conv(app, "oOtherShopper0001", team_id=None)
    push(app, other, "oOtherShopper0001", "HELLO there", T0 + minutes(5))
    with uow(app) as session:
        me = agent(session, lin)
        hits = library.search(me, "100%")
        assert [(h["direction"], h["conversation_id"]) for h in hits] == [("out", sale), ("in", sale)]
        assert hits[1]["snippet"] == "is it really 100% off? " + "x" * 24 + "…"  # 30 after the match
        assert hits[1]["status"] == RESOLVED and hits[1]["at"] == T0.isoformat()
        assert [h["snippet"] for h in library.search(me, "a_b")] == ["code A_B please"]
        assert library.search(me, "%%") == [] and library.search(me, "__") == []
        assert [h["conversation_id"] for h in library.search(me, "hello")] == [other, sale]
        assert [h["direction"] for h in library.search(me, "percent")] == ["note"]
        assert len(library.search(me, "please", limit=1)) == 1
        for query in ("", "%", " a ", "x" * 101):
            with pytest.raises(BadEntry):
                library.search(me, query)
