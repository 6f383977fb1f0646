"""One-key customer service from the shopper's phone to the agent's answer, through the emulator:
the FAQ first, the queue, messages stored once and linked, answers inside WeChat's windows, the
template fallback outside them, WeChat's refusals kept on the message, the one-tap rating."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from service_desk import intake, outbound, service
from service_desk.exceptions import BadMessage, NotYours, WindowClosed
from service_desk.models import BOT, FAILED, OFFERED, QUEUED, SENT, Agent, Conversation, FaqEntry, Message, Team
from tests.integration.members_helpers import make_staff, uow
from wx_service.ground import redis_keys
from wx_service.ground.db import utcnow
from wx_service.ground.models import InboundPush

TIMEOUT = 10


def shopper(base_url: str, emulator, action: str, **body) -> dict:
    openid = body.setdefault("openid", next(iter(emulator.shoppers)))
    r = requests.post(f"{base_url}/_emulator/shopper/{action}", json=body, timeout=TIMEOUT)
    r.raise_for_status()
    out = r.json()
    out["openid"] = openid
    return out


def follower(base_url: str, emulator) -> str:
    return shopper(base_url, emulator, "subscribe")["openid"]


def said(emulator, openid: str, via: str) -> list[dict]:
    return [m for m in emulator.shoppers[openid].chat if m["via"] == via]


def conversation_of(app, openid: str) -> Conversation:
    with uow(app) as session:
        found = session.scalar(select(Conversation).where(Conversation.openid == openid)
                               .order_by(Conversation.id.desc()))
        session.expunge(found)
        return found


def online_agent(app, name: str = "lin", team_code: str = "desk") -> int:
    staff_id = make_staff(app, name)
    with uow(app) as session:
        team = session.scalar(select(Team).where(Team.code == team_code))
        if team is None:
            team = Team(code=team_code, name=team_code)
            session.add(team)
            session.flush()
        agent = Agent(staff_id=staff_id, team_id=team.id, status="online", max_open=5, open_load=0)
        session.add(agent)
        session.flush()
        return agent.id


def add_faq(app, pattern: str, answer: str, priority: int = 0, is_regex: bool = False) -> None:
    with uow(app) as session:
        session.add(FaqEntry(question=pattern, pattern=pattern, answer=answer, priority=priority, is_regex=is_regex))


def take_it(app, conversation_id: int, agent_id: int) -> None:
    with uow(app):
        service.take(conversation_id, agent_id)


def agent_row(agent_id: int) -> Agent:
    """The agent, in the current unit of work."""
    from wx_service.ground.extensions import db

    return db.session.get(Agent, agent_id)


def answer(app, agent_id: int, conversation_id: int, body: str, key: str | None = None, **kw) -> int:
    with uow(app):
        return outbound.answer(agent_row(agent_id), conversation_id, body, key, **kw).id


def message(app, message_id: int) -> Message:
    with uow(app) as session:
        found = session.get(Message, message_id)
        session.expunge(found)
        return found


# -- the shopper's way in ----------------------------------------------------------------------
def test_the_menu_button_opens_a_conversation_where_the_faq_answers_first(app, base_url, emulator):
    add_faq(app, "停车|车位", "地下二层停车场，会员每次免费 2 小时。", priority=5)
    add_faq(app, "停车", "lower priority answer", priority=1)
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "click", openid=openid, key="CUSTOMER_SERVICE")
    assert conversation_of(app, openid).status == BOT
    shopper(base_url, emulator, "text", openid=openid, content="请问在哪里停车？")
    passive = said(emulator, openid, "passive")
    assert passive[-1]["content"].startswith("地下二层停车场")  # the higher priority wins
    assert "转人工" in passive[-1]["content"]
    assert conversation_of(app, openid).status == BOT


def test_a_second_unanswered_message_puts_the_shopper_in_the_queue_and_says_so(app, base_url, emulator):
    online_agent(app)
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "click", openid=openid, key="CUSTOMER_SERVICE")
    shopper(base_url, emulator, "text", openid=openid, content="我的快递到哪了")
    assert conversation_of(app, openid).status == BOT
    assert "没有找到答案" in said(emulator, openid, "passive")[-1]["content"]
    shopper(base_url, emulator, "text", openid=openid, content="还是不知道")
    conversation = conversation_of(app, openid)
    assert conversation.status == OFFERED  # queued, and offered at once to the one agent online
    assert "人工客服" in said(emulator, openid, "passive")[-1]["content"]


def test_zhuan_ren_gong_queues_with_the_place_in_line_or_the_hours_when_nobody_is_on(app, base_url, emulator):
    first, second = follower(base_url, emulator), shopper(base_url, emulator, "subscribe",
                                                        openid=list(emulator.shoppers)[1])["openid"]
    shopper(base_url, emulator, "text", openid=first, content="转人工")
    assert "没有客服在线" in said(emulator, first, "passive")[-1]["content"]  # nobody online
    assert conversation_of(app, first).status == QUEUED
    agent = online_agent(app)
    with uow(app) as session:  # the only agent is full: new shoppers wait in line
        session.get(Agent, agent).max_open = 0
    shopper(base_url, emulator, "text", openid=second, content="人工")
    assert "前面还有 1 位" in said(emulator, second, "passive")[-1]["content"]


def test_outside_the_desks_hours_the_shopper_is_queued_and_told_when_someone_answers(
        app, base_url, emulator, monkeypatch, wx):
    from datetime import datetime, timezone

    monkeypatch.setattr(wx, "settings", replace(wx.settings, DESK_HOURS="10:00-22:00"))
    late = datetime(2026, 12, 3, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    with app.app_context():
        assert intake.within_hours(datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc))  # 10:00 there
        assert not intake.within_hours(late)
        assert not intake.within_hours(datetime(2026, 12, 3, 14, 0, tzinfo=timezone.utc))  # 22:00 there
    with uow(app):
        said_back = intake.ask_for_person("oLateShopper", "keyword", now=late).text
    assert "10:00–22:00" in said_back and "没有客服在线" in said_back
    assert conversation_of(app, "oLateShopper").status == QUEUED


def test_a_shopper_who_waited_with_nobody_online_is_offered_to_the_first_agent_who_comes_online(
        app, base_url, emulator):
    agent = online_agent(app)
    with uow(app):
        service.set_status(agent, "away")
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    assert conversation_of(app, openid).status == QUEUED
    with uow(app):
        service.set_status(agent, "online")
    conversation = conversation_of(app, openid)
    assert (conversation.status, conversation.assignee_id) == (OFFERED, agent)


def test_the_mini_program_contact_entry_tags_the_conversation_and_greets_by_customer_service(
        app, base_url, emulator, run_jobs):
    with uow(app) as session:
        session.add(Team(code="LANCOME", name="兰蔻专柜"))
    openid = follower(base_url, emulator)
    push = requests.post(f"{base_url}/_emulator/shopper/contact",
                         json={"openid": openid, "session_from": "counter:LANCOME"}, timeout=TIMEOUT)
    assert push.ok
    run_jobs()
    conversation = conversation_of(app, openid)
    assert (conversation.source, conversation.context, conversation.channel) == ("mp_contact", "counter:LANCOME", "mp")
    with uow(app) as session:
        assert conversation.team_id == session.scalar(select(Team.id).where(Team.code == "LANCOME"))
    assert [m["content"] for m in said(emulator, openid, "customer_service")] == [intake.GREETING]


# -- messages are stored once, and linked -------------------------------------------------------
def test_every_message_of_the_conversation_is_its_push_record_and_a_retry_adds_nothing(app, base_url, emulator, wx):
    online_agent(app)
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    shopper(base_url, emulator, "text", openid=openid, content="我想退一件大衣")
    conversation = conversation_of(app, openid)
    with uow(app) as session:
        linked = session.scalars(select(InboundPush.content).where(InboundPush.conversation_id == conversation.id)
                                 .order_by(InboundPush.id)).all()
        follow_row = session.scalar(select(InboundPush.conversation_id).where(InboundPush.msg_type == "event"))
    assert linked == ["人工", "我想退一件大衣"]
    assert follow_row is None  # events are not messages of a conversation
    # WeChat retries the last push (same bytes): the conversation still has two messages.
    last = emulator.pushes[-1]
    retry = requests.post(f"{base_url}/wechat", params=last["query"], data=last["body"].encode(), timeout=TIMEOUT)
    assert retry.status_code == 200
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(InboundPush)
                              .where(InboundPush.conversation_id == conversation.id)) == 2


def test_a_message_is_linked_even_when_redis_forgot_the_conversation(app, base_url, emulator, wx):
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    conversation = conversation_of(app, openid)
    mark = redis_keys.desk_open(wx.settings.WECHAT_APPID, openid).name
    assert wx.redis.get(mark) is not None
    wx.redis.delete(mark)
    shopper(base_url, emulator, "text", openid=openid, content="帮助")  # routed as usual: the help text
    with uow(app) as session:
        assert session.scalar(select(InboundPush.conversation_id).where(InboundPush.content == "帮助")) == conversation.id
    with app.app_context(), uow(app):
        from service_desk import jobs
        assert jobs.refresh_marks() == 1  # the minute's sweep writes the mark again
    assert wx.redis.get(mark) is not None


# -- answers and WeChat's windows ----------------------------------------------------------------
def test_an_answer_reaches_the_shoppers_chat_and_a_double_click_sends_once(app, base_url, emulator, run_jobs):
    agent = online_agent(app)
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    conversation = conversation_of(app, openid)
    take_it(app, conversation.id, agent)
    first = answer(app, agent, conversation.id, "您好，我是客服小林", key="k1")
    again = answer(app, agent, conversation.id, "您好，我是客服小林", key="k1")
    assert first == again
    run_jobs()
    assert message(app, first).status == SENT
    assert [m["content"] for m in said(emulator, openid, "customer_service")] == ["您好，我是客服小林"]
    assert conversation_of(app, openid).first_response_at is not None


def test_only_the_owner_answers_and_an_empty_or_oversized_answer_changes_nothing(app, base_url, emulator, settings):
    owner, other = online_agent(app, "lin"), online_agent(app, "wang")
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    conversation = conversation_of(app, openid)
    with uow(app):
        service.take(conversation.id, owner) if conversation.assignee_id != owner else None
    owner = conversation_of(app, openid).assignee_id or owner
    take_it(app, conversation.id, owner) if conversation_of(app, openid).status == OFFERED else None
    not_owner = other if owner != other else online_agent(app, "zhao")
    with pytest.raises(NotYours):
        answer(app, not_owner, conversation.id, "我来回答")
    with pytest.raises(BadMessage):
        answer(app, owner, conversation.id, "   ")
    with pytest.raises(BadMessage):
        answer(app, owner, conversation.id, "长" * (settings.DESK_MAX_MESSAGE + 1))
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0


def _assigned(app, base_url, emulator) -> tuple[int, int, str]:
    agent = online_agent(app)
    openid = follower(base_url, emulator)
    shopper(base_url, emulator, "text", openid=openid, content="人工")
    conversation = conversation_of(app, openid)
    take_it(app, conversation.id, agent)
    return agent, conversation.id, openid


def test_the_window_allows_five_answers_after_a_message_then_says_why_not(app, base_url, emulator, run_jobs):
    agent, conversation_id, openid = _assigned(app, base_url, emulator)
    for n in range(5):
        answer(app, agent, conversation_id, f"第 {n + 1} 条")
    with uow(app):
        window = outbound.window_of(conversation_of(app, openid))
    assert (window.open, window.remaining) == (False, 0)
    with pytest.raises(WindowClosed) as refused:
        answer(app, agent, conversation_id, "第 6 条")
    assert "45047" in refused.value.reason
    assert refused.value.fallback_available
    with uow(app):  # past the budget's edge the answer goes as the template instead
        fallback = outbound.answer_as_template(agent_row(agent), conversation_id, "第 6 条").id
    run_jobs()
    assert len(said(emulator, openid, "customer_service")) == 5  # WeChat agrees: all five went out
    assert message(app, fallback).status == SENT
    assert [m["content"] for m in said(emulator, openid, "template") if "第 6 条" in m["content"]]
    shopper(base_url, emulator, "text", openid=openid, content="还有一个问题")  # a new message: five more
    with uow(app):
        window = outbound.window_of(conversation_of(app, openid))
    assert (window.open, window.remaining, window.kind) == (True, 5, "message")


def test_after_48_hours_the_answer_is_refused_and_the_template_goes_instead(app, base_url, emulator, run_jobs,
                                                                              settings):
    agent, conversation_id, openid = _assigned(app, base_url, emulator)
    later = utcnow() + timedelta(hours=48, minutes=1)
    with pytest.raises(WindowClosed) as refused:
        answer(app, agent, conversation_id, "抱歉久等了", now=later)
    assert "48 hours" in refused.value.reason
    assert refused.value.fallback_available  # the console offers the template
    with uow(app):
        sent = outbound.answer_as_template(agent_row(agent), conversation_id, "抱歉久等了", "t1", now=later).id
        again = outbound.answer_as_template(agent_row(agent), conversation_id, "抱歉久等了", "t1", now=later).id
    assert sent == again
    run_jobs()
    kept = message(app, sent)
    assert (kept.kind, kept.status) == ("template", SENT)
    [template] = said(emulator, openid, "template")
    assert template["template_id"] == settings.DESK_FALLBACK_TEMPLATE_ID
    assert "抱歉久等了" in template["content"]


def test_without_a_configured_template_the_answer_outside_the_window_is_refused_with_the_reason(
        app, base_url, emulator, monkeypatch, wx):
    agent, conversation_id, _ = _assigned(app, base_url, emulator)
    monkeypatch.setattr(wx, "settings", replace(wx.settings, DESK_FALLBACK_TEMPLATE_ID=""))
    later = utcnow() + timedelta(hours=49)
    with pytest.raises(WindowClosed) as refused:
        answer(app, agent, conversation_id, "抱歉久等了", now=later)
    assert refused.value.fallback_available is False
    with uow(app):
        with pytest.raises(WindowClosed) as no_template:
            outbound.answer_as_template(agent_row(agent), conversation_id, "抱歉久等了", now=later)
    assert "DESK_FALLBACK_TEMPLATE_ID" in no_template.value.reason
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 0


def test_a_refusal_by_wechat_is_kept_on_the_message_with_its_reason_and_can_be_retried(
        app, base_url, emulator, run_jobs):
    agent, conversation_id, openid = _assigned(app, base_url, emulator)
    # WeChat's clock says 49 hours passed; the desk has not heard of it (another sender used the
    # window, or clocks differ): WeChat's 45015 is what counts, and the agent sees it.
    requests.post(f"{base_url}/_emulator/control/clock", json={"advance": 49 * 3600}, timeout=TIMEOUT)
    sent = answer(app, agent, conversation_id, "您好")
    run_jobs()
    refused = message(app, sent)
    assert (refused.status, refused.wechat_errcode) == (FAILED, 45015)
    assert "out of time limit" in refused.wechat_errmsg
    assert said(emulator, openid, "customer_service") == []
    shopper(base_url, emulator, "text", openid=openid, content="在吗")  # the shopper writes again
    with uow(app):
        outbound.retry(agent_row(agent), sent)
    run_jobs()
    assert message(app, sent).status == SENT
    assert [m["content"] for m in said(emulator, openid, "customer_service")] == ["您好"]


def test_resolving_sends_the_one_tap_rating_and_a_tap_is_counted_once(app, base_url, emulator, run_jobs):
    agent, conversation_id, openid = _assigned(app, base_url, emulator)
    with uow(app):
        outbound.resolve(agent_row(agent), conversation_id)
    run_jobs()
    [menu] = [m for m in said(emulator, openid, "customer_service") if m["kind"] == "msgmenu"]
    option = next(o for o in menu["list"] if o["id"].endswith(":4"))
    tap = requests.post(f"{base_url}/_emulator/shopper/tap_menu",
                        json={"openid": openid, "id": option["id"], "content": option["content"]},
                        timeout=TIMEOUT)
    assert tap.ok
    assert conversation_of(app, openid).csat == 4
    assert said(emulator, openid, "passive")[-1]["content"] == "感谢您的评价！"
    requests.post(f"{base_url}/_emulator/shopper/tap_menu",
                  json={"openid": openid, "id": f"csat:{conversation_id}:1", "content": "1分 很不满意"},
                  timeout=TIMEOUT)
    assert conversation_of(app, openid).csat == 4  # the first tap stands
