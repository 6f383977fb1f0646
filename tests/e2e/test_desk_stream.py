"""The desk's live stream (SSE) over real HTTP: a shopper's message reaches the console of an
agent who may see it within moments, never the console of another team's agent; heartbeats keep
an idle stream open; a browser that goes away leaves no subscription behind."""
from __future__ import annotations

import time

from service_desk import intake, service
from tests.e2e.desk_helpers import EventStream, first_openid, make_agent, make_team, shopper, sign_in
from tests.integration.members_helpers import uow
from wx_service.edges.console import desk_stream


def test_a_shoppers_message_reaches_its_team_and_not_another(app, base_url, emulator):
    cosmetics, watches = make_team(app, "cosmetics", "美妆"), make_team(app, "watches", "钟表")
    make_agent(app, cosmetics, "lin", status="away")
    make_agent(app, watches, "kai", status="away")
    lin_stream = EventStream(sign_in(base_url, "lin"))
    kai_stream = EventStream(sign_in(base_url, "kai"))
    client, openid = shopper(emulator, base_url), first_openid(emulator)
    client.subscribe(openid)
    try:
        with uow(app):  # the shopper came from the cosmetics counter's contact button
            conversation = intake.start(openid, "mp_contact", context="counter:cosmetics")
            service.queue(conversation.id)
            conversation_id = conversation.id
        started = time.monotonic()
        assert client.text(openid, "这支口红还有货吗")["delivered"]
        event = lin_stream.wait_for(lambda e: e["kind"] == "message" and e["conversation"] == conversation_id)
        assert time.monotonic() - started < 5
        assert event["team"] == cosmetics and event["status"] == "queued" and isinstance(event["at"], float)
        assert "口红" not in str(event)  # ids, not content: the console re-reads

        # A shopper of no team: everyone hears it, and since one channel keeps its order, kai
        # hearing this later event proves the cosmetics one was withheld, not late.
        other = list(emulator.shoppers)[1]
        client.subscribe(other)
        client.text(other, "人工")
        kai_event = kai_stream.wait_for(lambda e: e["kind"] in ("opened", "queued") and e["team"] is None)
        assert kai_event["conversation"] != conversation_id
        heard_by_kai = [kai_event, *kai_stream.drain()]
        assert all(e.get("team") in (None, watches) for e in heard_by_kai)
        assert all(e.get("conversation") != conversation_id for e in heard_by_kai)
    finally:
        lin_stream.close()
        kai_stream.close()


def test_heartbeats_and_a_closed_stream_unsubscribes(app, base_url, monkeypatch, wx):
    from service_desk import events

    team = make_team(app)
    make_agent(app, team, "lin")
    monkeypatch.setattr(desk_stream, "HEARTBEAT_SECONDS", 0.3)
    with app.app_context():
        channel = events.channel()

    def subscribers() -> int:
        return dict(wx.redis.pubsub_numsub(channel))[channel.encode()]

    def settles_at_zero() -> None:
        deadline = time.monotonic() + 10
        while subscribers() != 0:
            assert time.monotonic() < deadline, "a stream kept its subscription after its browser left"
            time.sleep(0.1)

    settles_at_zero()  # streams of earlier tests find their browser gone at their next heartbeat
    stream = EventStream(sign_in(base_url, "lin"))
    assert stream.comments.get(timeout=5).startswith(": heartbeat")
    assert subscribers() == 1
    stream.close()
    settles_at_zero()
