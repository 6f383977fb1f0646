"""The desk's JSON calls over HTTP with a signed-in agent: the shopper asks for a person, the agent
accepts, answers (a double click stores one), notes, transfers, resolves; CSRF is enforced and a
refused write changes nothing; WeChat's window and refusals reach the agent; pictures go up and
come down through the server. The shopper is the emulator's, through the real webhook."""
from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from service_desk import outbound, service
from service_desk.models import Agent, CannedReply, FaqEntry, Message, PhoneReveal
from tests.e2e.desk_helpers import (
    conversation_of,
    customer_service_messages,
    first_openid,
    make_agent,
    make_team,
    shopper,
    sign_in,
)
from tests.integration.members_helpers import make_member, uow
from wx_service.edges.emulator.state import Fault

API = "/console/api/desk"


def message_count(app) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.direction == "out"))


@pytest.fixture
def desk(app, base_url, emulator):
    """One team, agent lin online, agent mei away; the emulator's first shopper."""
    team = make_team(app)
    lin = make_agent(app, team, "lin")
    mei = make_agent(app, team, "mei", status="away")
    client, openid = shopper(emulator, base_url), first_openid(emulator)
    client.subscribe(openid)  # a follower: WeChat takes customer-service messages to followers only
    return {"team": team, "lin": lin, "mei": mei, "openid": openid, "client": client}


def asks_for_a_person(app, desk) -> int:
    reply = desk["client"].text(desk["openid"], "人工")
    assert reply["delivered"], reply
    return conversation_of(app, desk["openid"]).id


def test_the_whole_conversation_through_the_api(app, base_url, emulator, run_jobs, desk):
    lin = sign_in(base_url, "lin")
    conversation_id = asks_for_a_person(app, desk)

    listed = lin.get(f"{API}/conversations?view=queue").json()
    [row] = listed["conversations"]
    assert row["id"] == conversation_id and row["offered_to_me"] and row["status"] == "offered"
    assert desk["openid"] not in str(row)  # masked
    assert listed["counts"]["queue"] == 1 and listed["counts"]["mine"] == 1

    shown = lin.get(f"{API}/conversations/{conversation_id}").json()
    assert shown["header"]["offered_to_me"] and not shown["header"]["mine"]
    assert shown["header"]["window"]["open"] and shown["header"]["window"]["remaining"] == 5
    assert [i["body"] for i in shown["thread"] if i["direction"] == "in"] == ["人工"]

    opened = lin.post(f"{API}/conversations/{conversation_id}/open")  # accepting one's own offer
    assert opened.status_code == 200 and opened.json()["header"]["mine"]
    assert conversation_of(app, desk["openid"]).status == "assigned"

    desk["client"].text(desk["openid"], "我的订单还没发货")
    assert lin.get(f"{API}/conversations?view=mine").json()["counts"]["unread_mine"] == 1
    lin.post(f"{API}/conversations/{conversation_id}/open")
    assert lin.get(f"{API}/counts").json()["counts"]["unread_mine"] == 0

    body = {"body": "您好，我帮您查一下", "client_key": "key-0001-abcdef"}
    first = lin.post(f"{API}/conversations/{conversation_id}/answer", body)
    again = lin.post(f"{API}/conversations/{conversation_id}/answer", body)  # the double click
    assert first.status_code == again.status_code == 201
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    assert message_count(app) == 1
    run_jobs()
    seen = customer_service_messages(emulator, desk["openid"])
    assert [m.get("content") for m in seen] == ["您好，我帮您查一下"]
    thread = lin.get(f"{API}/conversations/{conversation_id}").json()["thread"]
    assert [i["status"] for i in thread if i["direction"] == "out"] == ["sent"]

    assert lin.post(f"{API}/conversations/{conversation_id}/note", {"body": "VIP, be quick"}).status_code == 201
    resolved = lin.post(f"{API}/conversations/{conversation_id}/resolve")
    assert resolved.status_code == 200 and resolved.json()["conversation"]["status"] == "resolved"
    run_jobs()
    assert customer_service_messages(emulator, desk["openid"])[-1]["kind"] == "msgmenu"  # the rating
    assert [r["id"] for r in lin.get(f"{API}/conversations?view=resolved").json()["conversations"]] == [conversation_id]
    with uow(app) as session:
        assert session.get(Agent, desk["lin"]).open_load == 0


def test_csrf_is_enforced_and_a_stale_token_changes_nothing(app, base_url, desk):
    lin = sign_in(base_url, "lin")
    conversation_id = asks_for_a_person(app, desk)
    lin.post(f"{API}/conversations/{conversation_id}/open")
    for token in ("", "stale-token-from-another-session"):
        refused = lin.post(f"{API}/conversations/{conversation_id}/answer", {"body": "hi"}, csrf=token)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        assert lin.post(f"{API}/status", {"status": "away"}, csrf=token).status_code == 403
    assert message_count(app) == 0
    with uow(app) as session:
        assert session.get(Agent, desk["lin"]).status == "online"


def test_an_oversized_or_empty_message_is_400_and_stores_nothing(app, base_url, desk, settings):
    lin = sign_in(base_url, "lin")
    conversation_id = asks_for_a_person(app, desk)
    lin.post(f"{API}/conversations/{conversation_id}/open")
    too_long = "字" * (settings.DESK_MAX_MESSAGE + 1)
    refused = lin.post(f"{API}/conversations/{conversation_id}/answer", {"body": too_long})
    assert refused.status_code == 400 and "at most" in refused.json()["error"]
    assert lin.post(f"{API}/conversations/{conversation_id}/answer", {"body": "   "}).status_code == 400
    assert lin.post(f"{API}/conversations/{conversation_id}/answer", {"text": "wrong field"}).status_code == 400
    huge = lin.http.post(lin.url(f"{API}/conversations/{conversation_id}/answer"), data=b"x" * (2 * 1024 * 1024),
                         headers={"X-CSRF-Token": lin.csrf, "Content-Type": "application/json"}, timeout=15)
    assert huge.status_code == 413
    assert message_count(app) == 0


def test_unknown_and_other_teams_conversations_are_404(app, base_url, desk):
    lin = sign_in(base_url, "lin")
    other = make_team(app, "watches", "钟表柜台")
    with uow(app):
        elsewhere = service.open_conversation("oOtherTeamShopper0001", "mp_contact", team_code="watches")
        service.queue(elsewhere.id)
        elsewhere_id = elsewhere.id
    assert other
    for path in (f"{API}/conversations/999999", f"{API}/conversations/{elsewhere_id}",
                 f"{API}/conversations/{elsewhere_id}/panel"):
        assert lin.get(path).status_code == 404, path
    for action in ("take", "open", "resolve", "answer", "note"):
        response = lin.post(f"{API}/conversations/{elsewhere_id}/{action}", {"body": "hi"})
        assert response.status_code == 404, (action, response.text)
    assert all(r["id"] != elsewhere_id for r in lin.get(f"{API}/conversations?view=open").json()["conversations"])
    assert conversation_of(app, "oOtherTeamShopper0001").status == "queued"  # nothing moved


def test_two_agents_take_the_same_conversation_one_wins(app, base_url, desk):
    with uow(app) as session:
        session.get(Agent, desk["lin"]).status = "away"  # nobody online: it waits in the queue
    lin, mei = sign_in(base_url, "lin"), sign_in(base_url, "mei")
    conversation_id = asks_for_a_person(app, desk)
    assert conversation_of(app, desk["openid"]).status == "queued"
    results: dict[str, int] = {}
    start = threading.Barrier(2)

    def take(name, console):
        start.wait()
        results[name] = console.post(f"{API}/conversations/{conversation_id}/take").status_code

    threads = [threading.Thread(target=take, args=(n, c)) for n, c in (("lin", lin), ("mei", mei))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409], results
    winner = desk["lin"] if results["lin"] == 200 else desk["mei"]
    assert conversation_of(app, desk["openid"]).assignee_id == winner
    with uow(app) as session:
        assert sorted(a.open_load for a in session.scalars(select(Agent))) == [0, 1]  # the loser's load undone


def test_a_shut_window_is_explained_and_the_template_is_offered(app, base_url, desk, run_jobs, monkeypatch):
    lin = sign_in(base_url, "lin")
    with uow(app):  # a conversation the shopper never wrote in: WeChat's window was never opened
        conversation = service.open_conversation("oNeverWrote0000000001", "menu")
        service.queue(conversation.id)
        conversation_id = conversation.id
    assert lin.post(f"{API}/conversations/{conversation_id}/take").status_code == 200
    monkeypatch.setattr(outbound, "fallback_available", lambda: False)  # no template configured
    header = lin.get(f"{API}/conversations/{conversation_id}").json()["header"]
    assert not header["window"]["open"] and "45015" in header["window"]["reason"]
    refused = lin.post(f"{API}/conversations/{conversation_id}/answer", {"body": "您好"})
    assert refused.status_code == 409
    assert refused.json() == {"error": header["window"]["reason"], "window_closed": True, "fallback_available": False}
    no_template = lin.post(f"{API}/conversations/{conversation_id}/answer-template", {"body": "您好"})
    assert no_template.status_code == 409 and no_template.json()["fallback_available"] is False
    assert message_count(app) == 0

    monkeypatch.setattr(outbound, "fallback_available", lambda: True)  # a template is configured
    sent = lin.post(f"{API}/conversations/{conversation_id}/answer-template",
                    {"body": "您好，已为您处理", "client_key": "template-key-01"})
    assert sent.status_code == 201 and sent.json()["message"]["kind"] == "template"


def test_a_message_wechat_refused_shows_its_errcode_and_can_be_retried(app, base_url, emulator, run_jobs, desk):
    lin = sign_in(base_url, "lin")
    conversation_id = asks_for_a_person(app, desk)
    lin.post(f"{API}/conversations/{conversation_id}/open")
    emulator.faults.append(Fault(api="message/custom/send", errcode=45047, errmsg="out of response count limit"))
    message_id = lin.post(f"{API}/conversations/{conversation_id}/answer", {"body": "在的"}).json()["message"]["id"]
    run_jobs()
    [failed] = [i for i in lin.get(f"{API}/conversations/{conversation_id}").json()["thread"] if i["direction"] == "out"]
    assert (failed["status"], failed["errcode"], failed["errmsg"]) == ("failed", 45047, "out of response count limit")
    retried = lin.post(f"{API}/messages/{message_id}/retry")
    assert retried.status_code == 200 and retried.json()["message"]["status"] == "pending"
    run_jobs()
    [sent] = [i for i in lin.get(f"{API}/conversations/{conversation_id}").json()["thread"] if i["direction"] == "out"]
    assert sent["status"] == "sent" and sent["errcode"] is None
    assert lin.post(f"{API}/messages/{message_id}/retry").status_code == 400  # only a failed one


def test_transfer_to_an_agent_with_a_note_and_the_status_toggle(app, base_url, desk):
    lin, mei = sign_in(base_url, "lin"), sign_in(base_url, "mei")
    conversation_id = asks_for_a_person(app, desk)
    assert mei.post(f"{API}/conversations/{conversation_id}/resolve").status_code == 409  # not hers
    lin.post(f"{API}/conversations/{conversation_id}/open")
    assert mei.post(f"{API}/status", {"status": "online"}).json()["me"]["status"] == "online"
    assert mei.post(f"{API}/status", {"status": "busy"}).status_code == 400
    agents = lin.get(f"{API}/agents").json()
    assert {a["name"] for a in agents["agents"] if a["status"] == "online"} == {"Lin", "Mei"}
    moved = lin.post(f"{API}/conversations/{conversation_id}/transfer",
                     {"to_agent": desk["mei"], "note": "she asked about 会员积分"})
    assert moved.status_code == 200 and moved.json()["conversation"]["assignee"] == desk["mei"]
    [row] = mei.get(f"{API}/conversations?view=mine").json()["conversations"]
    assert row["offered_to_me"]
    thread = mei.get(f"{API}/conversations/{conversation_id}").json()["thread"]
    assert any(i["direction"] == "note" and "会员积分" in i["body"] for i in thread)
    assert lin.get(f"{API}/conversations?view=mine").json()["conversations"] == []
    assert mei.post(f"{API}/conversations/{conversation_id}/open").json()["header"]["mine"]


def test_pictures_go_up_through_media_upload_and_come_down_through_the_server(app, base_url, emulator, run_jobs, desk):
    lin = sign_in(base_url, "lin")
    conversation_id = asks_for_a_person(app, desk)
    lin.post(f"{API}/conversations/{conversation_id}/open")
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    sent = lin.post(f"{API}/conversations/{conversation_id}/image",
                    files={"file": ("photo.png", png, "image/png")}, data={"client_key": "img-key-0001"})
    assert sent.status_code == 201, sent.text
    media_id = sent.json()["message"]["media_id"]
    assert emulator.media[media_id].data == png
    run_jobs()
    assert customer_service_messages(emulator, desk["openid"])[-1] == {
        **customer_service_messages(emulator, desk["openid"])[-1], "kind": "image", "media_id": media_id}
    not_a_picture = lin.post(f"{API}/conversations/{conversation_id}/image",
                             files={"file": ("a.txt", b"hello", "text/plain")})
    assert not_a_picture.status_code == 400

    # The shopper sends a picture: the console fetches it from WeChat (media/get), never the browser.
    theirs = b"\xff\xd8\xff\xe0shopper-photo"
    sent_picture = desk["client"].image(desk["openid"], theirs, "image/jpeg")
    assert sent_picture["delivered"]
    shopper_media = sent_picture["media_id"]
    fetched = lin.get(f"{API}/media/{shopper_media}")
    assert fetched.status_code == 200 and fetched.content == theirs
    assert fetched.headers["Content-Type"] == "image/jpeg"
    assert lin.get(f"{API}/media/not-in-any-conversation").status_code == 404
    thread = lin.get(f"{API}/conversations/{conversation_id}").json()["thread"]
    assert any(i["kind"] == "image" and i["media_id"] == shopper_media for i in thread)

    # A voice message: shown as one, its file fetched the same way.
    voice = desk["client"].voice(desk["openid"], b"#!AMR\n" + b"\0" * 32)
    assert voice["delivered"]
    thread = lin.get(f"{API}/conversations/{conversation_id}").json()["thread"]
    assert any(i["kind"] == "voice" and i["media_id"] == voice["media_id"] for i in thread)
    heard = lin.get(f"{API}/media/{voice['media_id']}")
    assert heard.status_code == 200 and heard.content.startswith(b"#!AMR")


def test_side_panel_and_the_audited_phone(app, base_url, emulator, desk):
    lin = sign_in(base_url, "lin")
    member_id = make_member(app, name="王金", oa_openid=desk["openid"])
    with uow(app) as session:
        from members.models import Member

        session.get(Member, member_id).phone = "13800001234"
    conversation_id = asks_for_a_person(app, desk)
    side = lin.get(f"{API}/conversations/{conversation_id}/panel").json()
    assert side["member"]["name"] == "王金" and side["member"]["has_phone"]
    assert "13800001234" not in str(side) and side["member"]["phone_masked"].endswith("1234")
    assert lin.post(f"{API}/conversations/{conversation_id}/phone").json()["phone"] == "13800001234"
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(PhoneReveal)) == 1


def test_canned_replies_faq_and_search(app, base_url, desk):
    lin, mei = sign_in(base_url, "lin"), sign_in(base_url, "mei")
    shared = lin.post(f"{API}/canned", {"shortcut": "/hi", "body": "您好，很高兴为您服务", "shared": True})
    own = lin.post(f"{API}/canned", {"shortcut": "/bye", "body": "感谢您的咨询"})
    assert shared.status_code == own.status_code == 201
    assert {r["shortcut"] for r in lin.get(f"{API}/canned").json()["replies"]} == {"/hi", "/bye"}
    assert {r["shortcut"] for r in mei.get(f"{API}/canned").json()["replies"]} == {"/hi"}
    assert mei.delete(f"{API}/canned/{own.json()['reply']['id']}").status_code == 404  # not hers: as if none
    assert lin.post(f"{API}/canned", {"shortcut": "/hi", "body": "dup", "shared": True}).status_code == 400

    bad = lin.post(f"{API}/faq", {"question": "停车", "pattern": "停车(", "is_regex": True, "answer": "B2"})
    assert bad.status_code == 400 and "regular expression" in bad.json()["error"]
    saved = lin.post(f"{API}/faq", {"question": "停车怎么收费", "pattern": "停车|车位", "answer": "B2 停车场，会员免费 2 小时"})
    assert saved.status_code == 201
    asks_for_a_person(app, desk)
    desk["client"].text(desk["openid"], "停车怎么收费")
    with uow(app) as session:
        assert session.scalar(select(func.count()).select_from(FaqEntry)) == 1
        assert session.scalar(select(func.count()).select_from(CannedReply)) == 2
    hits = lin.get(f"{API}/search", params={"q": "停车"}).json()["results"]
    assert any(h["direction"] == "in" and "停车" in h["snippet"] for h in hits)
    assert lin.delete(f"{API}/faq/{saved.json()['entry']['id']}").status_code == 200
    assert lin.get(f"{API}/faq").json()["entries"] == []


def test_the_pages_render_for_an_agent(app, base_url, desk):
    lin = sign_in(base_url, "lin")
    page = lin.get("/console/desk")
    assert page.status_code == 200 and 'id="conversations"' in page.text and "EventSource" in page.text
    today = date.today().isoformat()
    metrics = lin.get(f"/console/desk/metrics?start={today}&end={today}")
    assert metrics.status_code == 200 and "<svg" in metrics.text and 'id="per-day"' in metrics.text
    assert lin.get("/console/desk/faq").status_code == 200
    assert lin.get("/console/desk/canned").status_code == 200
    assert "http://" not in page.text.replace(base_url, "").split("<script>")[1]  # no CDN
