"""Which desk events a console stream forwards: the access rule, applied to events."""
from __future__ import annotations

from wx_service.edges.console.desk_stream import visible


def test_an_agent_hears_their_team_and_the_general_queue_only():
    assert visible({"kind": "message", "team": 3}, 3)
    assert visible({"kind": "queued", "team": None}, 3)
    assert not visible({"kind": "message", "team": 4}, 3)


def test_agent_events_are_heard_by_the_same_team_only():
    assert visible({"kind": "agent", "team": 3}, 3)
    assert not visible({"kind": "agent", "team": None}, 3)


def test_a_conversation_transferred_away_is_heard_by_the_team_it_left():
    moved = {"kind": "requeued", "team": 4, "from_team": 3}
    assert visible(moved, 3) and visible(moved, 4)
    assert not visible(moved, 5)
