"""The desk's read side: inbox views and counts, the thread, the header, who is on duty; and the
access rule on all of them (another team's conversation is as if it did not exist)."""
from __future__ import annotations

import pytest

from service_desk import inbox, library, panel
from service_desk.exceptions import UnknownConversation
from service_desk.models import ASSIGNED, BOT, BOT_ANSWER, EVENT, NOTE, OFFERED, OUT, RESOLVED
from tests.integration.desk_read_helpers import T0, agent, conv, minutes, push, say
from tests.integration.members_helpers import make_member, uow
from tests.integration.test_service_desk import make_agent, make_team


@pytest.fixture
def desk(app):
    """Two teams: lin and mei on cosmetics, wu on watches."""
    cosmetics, watches = make_team(app, "1F-cosmetics"), make_team(app, "B1-watches")
    return {"cosmetics": cosmetics, "watches": watches, "lin": make_agent(app, cosmetics, "lin"),
            "mei": make_agent(app, cosmetics, "mei"), "wu": make_agent(app, watches, "wu")}


def ids(rows) -> list[int]:
    return [row.id for row in rows]


def test_each_view_lists_its_conversations_in_the_order_agents_work_them(app, desk):
    team, lin, mei = desk["cosmetics"], desk["lin"], desk["mei"]
    later = conv(app, "oLater", team_id=team, created_at=T0 + minutes(10))
    older = conv(app, "oOlder", team_id=None, created_at=T0 - minutes(30))  # the general queue
    offered = conv(app, "oOffered", team_id=team, status=OFFERED, assignee=lin, created_at=T0 + minutes(5))
    held = conv(app, "oHeld", team_id=team, status=ASSIGNED, assignee=lin, created_at=T0 - minutes(60))
    meis = conv(app, "oMeis", team_id=team, status=ASSIGNED, assignee=mei, created_at=T0)
    bot = conv(app, "oBot", team_id=team, status=BOT, created_at=T0 - minutes(90))
    old_done = conv(app, "oDone1", team_id=team, status=RESOLVED, assignee=lin, created_at=T0 - minutes(200),
                    resolved_at=T0 - minutes(100))
    new_done = conv(app, "oDone2", team_id=team, status=RESOLVED, assignee=mei, created_at=T0 - minutes(300),
                    resolved_at=T0 - minutes(50))
    with uow(app) as session:
        me = agent(session, lin)
        queue = inbox.list_conversations(me, "queue")
        assert ids(queue) == [older, offered, later]
        assert [row.offered_to_me for row in queue] == [False, True, False]
        assert ids(inbox.list_conversations(me, "mine")) == [held, offered]
        assert ids(inbox.list_conversations(me, "open")) == [bot, held, older, meis, offered, later]
        assert ids(inbox.list_conversations(me, "resolved")) == [new_done, old_done]
        assert ids(inbox.list_conversations(me, "open", limit=2)) == [bot, held]
        assert ids(inbox.list_conversations(agent(session, mei), "mine")) == [meis]
        row = {r.id: r for r in inbox.list_conversations(me, "open")}[meis]
        assert (row.assignee_name, row.team_code, row.status) == ("Mei", "1F-cosmetics", ASSIGNED)
        shown = row.as_dict()
        assert shown["created_at"] == T0.isoformat() and "oMeis" not in shown["openid_masked"]
        assert inbox.counts(me) == {"queue": 3, "mine": 2, "open": 6, "unread_mine": 0}
        with pytest.raises(ValueError):
            inbox.list_conversations(me, "everything")


def test_another_teams_conversation_is_hidden_from_every_read(app, desk):
    watches, lin, wu = desk["watches"], desk["lin"], desk["wu"]
    theirs = conv(app, "oWatch", team_id=watches, status=ASSIGNED, assignee=wu)
    push(app, theirs, "oWatch", "my watch strap broke", T0)
    say(app, theirs, NOTE, "strap in stock", T0 + minutes(1), agent_id=wu)
    general = conv(app, "oGeneral", team_id=None)
    push(app, general, "oGeneral", "where is the strap counter", T0)
    with uow(app) as session:
        me = agent(session, lin)
        for view in inbox.VIEWS:
            assert theirs not in ids(inbox.list_conversations(me, view))
        assert inbox.counts(me)["open"] == 1
        for read in (inbox.thread, inbox.header, panel.side_panel, panel.reveal_phone):
            with pytest.raises(UnknownConversation):
                read(me, theirs)
        assert [hit["conversation_id"] for hit in library.search(me, "strap")] == [general]
        watcher = agent(session, wu)
        assert {hit["conversation_id"] for hit in library.search(watcher, "strap")} == {theirs, general}
        assert len(inbox.thread(watcher, theirs)) == 2


def test_unread_counts_what_arrived_after_the_owner_last_read_and_the_preview_is_the_last_text(app, desk):
    team, lin = desk["cosmetics"], desk["lin"]
    read = conv(app, "oRead", team_id=team, status=ASSIGNED, assignee=lin, read_at=T0)
    push(app, read, "oRead", "seen already", T0 - minutes(1))
    push(app, read, "oRead", "one more thing", T0 + minutes(1))
    long_text = "请问" + "这款面霜" * 30
    push(app, read, "oRead", long_text, T0 + minutes(2))
    push(app, read, "oRead", "http://img.example/x.jpg", T0 + minutes(3), msg_type="image", media_id="m1")
    never = conv(app, "oNever", team_id=team)
    push(app, never, "oNever", "hello?", T0)
    push(app, never, "oNever", "anyone?", T0 + minutes(1))
    push(app, None, "oNever", "before the conversation", T0 - minutes(10))  # not linked: not counted
    with uow(app) as session:
        me = agent(session, lin)
        rows = {row.id: row for row in inbox.list_conversations(me, "open")}
        assert rows[read].unread == 3 and rows[never].unread == 2
        assert len(rows[read].preview) == 60 and rows[read].preview.startswith("请问这款面霜")
        assert rows[never].preview == "anyone?"
        assert inbox.counts(me)["unread_mine"] == 3


def test_the_thread_merges_shopper_and_desk_messages_in_time_order(app, desk):
    team, lin = desk["cosmetics"], desk["lin"]
    c = conv(app, "oThread", team_id=team, status=ASSIGNED, assignee=lin)
    first = push(app, c, "oThread", "do you have SPF50?", T0, response="<xml>FAQ</xml>")
    say(app, c, EVENT, "queued", T0)  # the same instant: the shopper's message comes first
    say(app, c, BOT_ANSWER, "SPF50 is on the first floor", T0 + minutes(1))
    refused = say(app, c, OUT, "yes, 3 left", T0 + minutes(3), agent_id=lin, status="failed", errcode=45015,
                  errmsg="response out of time limit")
    push(app, c, "oThread", "http://img.example/a.jpg", T0 + minutes(2), msg_type="image", media_id="MEDIA1")
    say(app, c, NOTE, "she is a gold member", T0 + minutes(4), agent_id=lin)
    with uow(app) as session:
        items = inbox.thread(agent(session, lin), c)
    assert [(i.direction, i.kind) for i in items] == [
        ("in", "text"), ("event", "event"), ("bot", "text"), ("in", "image"), ("out", "text"), ("note", "text")]
    assert items[0].push_id == first and items[0].status == "replied" and items[3].status == "received"
    assert items[3].media_id == "MEDIA1"
    out = items[4]
    assert (out.message_id, out.status, out.errcode, out.agent_name) == (refused, "failed", 45015, "Lin")
    assert out.as_dict()["at"] == (T0 + minutes(3)).isoformat()


def test_the_header_says_who_holds_it_and_whether_wechat_takes_an_answer_now(app, desk):
    from wx_service.ground.db import utcnow

    team, lin, mei = desk["cosmetics"], desk["lin"], desk["mei"]
    c = conv(app, "oHead", team_id=team, status=ASSIGNED, assignee=lin, context="counter:1F-cosmetics")
    push(app, c, "oHead", "hi", utcnow())
    offered = conv(app, "oOffer", team_id=team, status=OFFERED, assignee=mei)
    with uow(app) as session:
        head = inbox.header(agent(session, lin), c)
        assert head["team"]["code"] == "1F-cosmetics" and head["assignee_name"] == "Lin"
        assert head["mine"] is True and head["offered_to_me"] is False
        assert head["window"]["open"] is True and head["window"]["kind"] == "message"
        assert head["fallback_available"] is True  # development and test configure the fallback template
        assert inbox.header(agent(session, mei), c)["mine"] is False
        assert inbox.header(agent(session, mei), offered)["offered_to_me"] is True
        assert inbox.header(agent(session, lin), offered)["window"]["open"] is False  # never wrote


def test_agents_on_duty_are_the_team_online_first_and_teams_count_who_is_online(app, desk):
    make_agent(app, desk["cosmetics"], "away", status="away")
    with uow(app) as session:
        duty = inbox.agents_on_duty(agent(session, desk["lin"]))
        assert [a["name"] for a in duty] == ["Lin", "Mei", "Away"]
        assert duty[0] == {"id": desk["lin"], "name": "Lin", "team": "1F-cosmetics", "status": "online",
                           "open_load": 0, "max_open": 5, "me": True}
        assert inbox.teams() == [
            {"id": desk["cosmetics"], "code": "1F-cosmetics", "name": "1F-cosmetics", "online": 2, "agents": 3},
            {"id": desk["watches"], "code": "B1-watches", "name": "B1-watches", "online": 1, "agents": 1}]


def test_a_conversation_with_a_member_lists_as_theirs(app, desk):
    member = make_member(app, level="gold", name="王女士")
    c = conv(app, "oMember", team_id=desk["cosmetics"], member_id=member)
    with uow(app) as session:
        [row] = inbox.list_conversations(agent(session, desk["lin"]), "queue")
        assert (row.id, row.member_name, row.member_level) == (c, "王女士", "gold")


def test_a_list_costs_three_queries_however_many_rows_it_has(app, desk):
    from sqlalchemy import event

    for n in range(8):
        c = conv(app, f"oMany{n:02d}", team_id=desk["cosmetics"], created_at=T0 + minutes(n))
        push(app, c, f"oMany{n:02d}", f"message {n}", T0 + minutes(n))
    engine = app.extensions["wx"].db.engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    with uow(app) as session:
        me = agent(session, desk["lin"])
        event.listen(engine, "before_cursor_execute", count)
        try:
            rows = inbox.list_conversations(me, "queue")
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(rows) == 8 and all(row.unread == 1 and row.preview for row in rows)
    assert len(statements) == 3
