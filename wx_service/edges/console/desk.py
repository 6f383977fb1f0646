"""The customer-service desk in the console (issue 10): the inbox page, the metrics, FAQ and canned
reply pages, and the JSON calls the inbox makes (/console/api/desk/...).

A thin edge over service_desk: each call finds the signed-in staff member's agent row, runs one
desk verb (or read) in one unit of work committed here, and shapes JSON. The desk's refusals
become 4xx JSON `{"error": ...}` in one place (`refusal`). Live updates are desk_stream.py's,
pictures desk_media.py's. Every route needs the `agent` role (auth.roles: 401/redirect without a
session, 403 without the role, CSRF on writes). The role opens the door, the Agent row (its team)
does the work: `desk agent-add` makes both, so they agree; a staff member allowed in without a row
(an admin) gets the desk's own 403 with the reason.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request
from markupsafe import Markup

from members.staff import AGENT
from service_desk import access, inbox, library, metrics, outbound, panel, service
from service_desk.exceptions import (
    AlreadyTaken,
    AtCapacity,
    BadEntry,
    BadMessage,
    DeskError,
    NoPhone,
    NotAnAgent,
    NotYours,
    UnknownConversation,
    UnknownEntry,
    WindowClosed,
)
from service_desk.faq import BadPattern
from service_desk.models import Agent
from wx_service.edges.bodies import json_body
from wx_service.edges.console.auth import roles
from wx_service.edges.console.bodies import DeskAnswer, DeskCanned, DeskFaq, DeskNote, DeskStatus, DeskTransfer
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, services
from wx_service.ground.validation import BadShape

bp = Blueprint("console_desk", __name__, template_folder="templates")

API = "/console/api/desk"
MAX_METRIC_DAYS = 92
VIEWS = ("queue", "mine", "open", "resolved")


def refusal(exc: Exception) -> tuple[Response, int]:
    """A desk refusal as the JSON the page shows: the desk's own words, the status that fits."""
    if isinstance(exc, WindowClosed):
        return jsonify(error=exc.reason, window_closed=True, fallback_available=exc.fallback_available), 409
    if isinstance(exc, BadShape):
        return jsonify(error=str(exc), field=exc.field), 400
    if isinstance(exc, (UnknownConversation, UnknownEntry)):
        return jsonify(error=str(exc)), 404
    if isinstance(exc, (AlreadyTaken, NotYours, AtCapacity)):
        return jsonify(error=str(exc)), 409
    if isinstance(exc, NotAnAgent):
        return jsonify(error=str(exc)), 403
    if isinstance(exc, (BadMessage, BadEntry, BadPattern)):
        return jsonify(error=str(exc)), 400
    if isinstance(exc, NoPhone):
        return jsonify(error=str(exc)), 409
    if isinstance(exc, LookupError):
        return jsonify(error=str(exc).strip("'\"")), 404
    return jsonify(error=str(exc)), 400  # ValueError: a request the desk cannot make sense of


REFUSED = (DeskError, BadShape, BadPattern, LookupError, ValueError)


def desk_api(view: Callable[..., Any]) -> Callable[..., Any]:
    """The signed-in agent, one unit of work around the call (committed when it returns, rolled
    back on any refusal, so a refused write changes nothing), and refusals as JSON."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            with db.unit_of_work():
                agent = access.agent_for_staff(g.staff.id)
                return view(agent, *args, **kwargs)
        except REFUSED as exc:
            return refusal(exc)
    return wrapped


def desk_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages: the agent, or a readable 403 for staff who are not agents."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        try:
            agent = access.agent_for_staff(g.staff.id)
        except NotAnAgent as exc:
            return render_template("console/desk_forbidden.html", reason=str(exc)), 403
        return view(agent, *args, **kwargs)
    return wrapped


def _conversation_view(agent: Agent, conversation_id: int) -> dict[str, Any]:
    return {"header": inbox.header(agent, conversation_id),
            "thread": [item.as_dict() for item in inbox.thread(agent, conversation_id)]}


def _message(message) -> dict[str, Any]:
    return {"id": message.id, "conversation_id": message.conversation_id, "kind": message.kind,
            "status": message.status, "body": message.body, "media_id": message.media_id}


# -- pages ---------------------------------------------------------------------------------------

@bp.get("/console/desk")
@roles(AGENT)
@desk_page
def index(agent: Agent):
    return render_template("console/desk.html", agent=agent, api=API,
                           offer_seconds=services().settings.DESK_OFFER_SECONDS,
                           max_message=services().settings.DESK_MAX_MESSAGE)


def _date_arg(name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.args.get(name, "")) if request.args.get(name) else default
    except ValueError:
        return default


@bp.get("/console/desk/metrics")
@roles(AGENT)
@desk_page
def metrics_page(agent: Agent):
    today = utcnow().date()
    end = _date_arg("end", today)
    start = _date_arg("start", end - timedelta(days=13))
    if start > end:
        start, end = end, start
    start = max(start, end - timedelta(days=MAX_METRIC_DAYS - 1))
    days = metrics.daily(start, end)
    return render_template("console/desk_metrics.html", start=start, end=end, days=days,
                           agents=metrics.per_agent(start, end), chart=Markup(metrics.chart_svg(days)))


@bp.get("/console/desk/faq")
@roles(AGENT)
@desk_page
def faq_page(agent: Agent):
    return render_template("console/desk_faq.html", api=API, entries=[_faq(e) for e in library.list_faq()])


@bp.get("/console/desk/canned")
@roles(AGENT)
@desk_page
def canned_page(agent: Agent):
    return render_template("console/desk_canned.html", api=API, replies=[_canned(r) for r in library.canned_for(agent)])


# -- the inbox -----------------------------------------------------------------------------------

@bp.get(f"{API}/conversations")
@roles(AGENT)
@desk_api
def conversations(agent: Agent):
    """?view=queue|mine|open|resolved: the list, with the tab counts beside it."""
    view = request.args.get("view", "queue")
    if view not in VIEWS:
        raise ValueError("view is one of queue, mine, open, resolved")
    return jsonify(view=view, conversations=[row.as_dict() for row in inbox.list_conversations(agent, view)],
                   counts=inbox.counts(agent), me={"id": agent.id, "status": agent.status, "team": agent.team_id})


@bp.get(f"{API}/counts")
@roles(AGENT)
@desk_api
def counts(agent: Agent):
    return jsonify(counts=inbox.counts(agent))


@bp.get(f"{API}/conversations/<int:conversation_id>")
@roles(AGENT)
@desk_api
def show(agent: Agent, conversation_id: int):
    """The header (WeChat's window, who owns it, the offer) and the thread. Reads only."""
    return jsonify(_conversation_view(agent, conversation_id))


@bp.post(f"{API}/conversations/<int:conversation_id>/take")
@roles(AGENT)
@desk_api
def take(agent: Agent, conversation_id: int):
    """Take it from the queue (or accept one's own offer): 409 when someone else was first."""
    access.conversation_for(agent, conversation_id)  # another team's: 404, as if it did not exist
    service.take(conversation_id, agent.id)
    service.mark_read(conversation_id, agent.id)
    return jsonify(_conversation_view(agent, conversation_id))


@bp.post(f"{API}/conversations/<int:conversation_id>/open")
@roles(AGENT)
@desk_api
def open_(agent: Agent, conversation_id: int):
    """The agent opens the conversation: their own offer is accepted, and what they hold is read."""
    header = inbox.header(agent, conversation_id)
    if header["offered_to_me"]:
        service.take(conversation_id, agent.id)
    service.mark_read(conversation_id, agent.id)
    return jsonify(_conversation_view(agent, conversation_id))


@bp.post(f"{API}/conversations/<int:conversation_id>/answer")
@roles(AGENT)
@desk_api
def answer(agent: Agent, conversation_id: int):
    """{body, client_key}: a customer-service message; 409 window_closed when WeChat would refuse it."""
    body = json_body(DeskAnswer)
    message = outbound.answer(agent, conversation_id, body.body, body.client_key)
    return jsonify(message=_message(message)), 201


@bp.post(f"{API}/conversations/<int:conversation_id>/answer-template")
@roles(AGENT)
@desk_api
def answer_template(agent: Agent, conversation_id: int):
    """{body, client_key}: outside WeChat's window, the answer goes as the configured template."""
    body = json_body(DeskAnswer)
    message = outbound.answer_as_template(agent, conversation_id, body.body, body.client_key)
    return jsonify(message=_message(message)), 201


@bp.post(f"{API}/messages/<int:message_id>/retry")
@roles(AGENT)
@desk_api
def retry(agent: Agent, message_id: int):
    """Send again an answer WeChat refused: the same row, the same words."""
    return jsonify(message=_message(outbound.retry(agent, message_id)))


@bp.post(f"{API}/conversations/<int:conversation_id>/note")
@roles(AGENT)
@desk_api
def note(agent: Agent, conversation_id: int):
    body = json_body(DeskNote)
    return jsonify(message=_message(outbound.note(agent, conversation_id, body.body))), 201


@bp.post(f"{API}/conversations/<int:conversation_id>/transfer")
@roles(AGENT)
@desk_api
def transfer(agent: Agent, conversation_id: int):
    """{to_agent | to_team, note}: the note is written first, so whoever gets it reads why."""
    body = json_body(DeskTransfer)
    access.conversation_for(agent, conversation_id)
    if body.note.strip():
        outbound.note(agent, conversation_id, body.note)
    conversation = service.transfer(conversation_id, agent.id, to_agent_id=body.to_agent, to_team_id=body.to_team)
    outbound.log_event(conversation, "transferred", agent.id)
    return jsonify(conversation={"id": conversation.id, "status": conversation.status,
                                 "assignee": conversation.assignee_id, "team": conversation.team_id})


@bp.post(f"{API}/conversations/<int:conversation_id>/resolve")
@roles(AGENT)
@desk_api
def resolve(agent: Agent, conversation_id: int):
    """Close it; the shopper gets the one-tap rating when WeChat's window allows."""
    conversation = outbound.resolve(agent, conversation_id)
    return jsonify(conversation={"id": conversation.id, "status": conversation.status})


@bp.post(f"{API}/status")
@roles(AGENT)
@desk_api
def status(agent: Agent):
    """{status: online|away}: online agents are offered new conversations."""
    body = json_body(DeskStatus)
    changed = service.set_status(agent.id, body.status)
    return jsonify(me={"id": changed.id, "status": changed.status})


@bp.get(f"{API}/agents")
@roles(AGENT)
@desk_api
def agents(agent: Agent):
    """Who is on duty in the agent's team, and the teams (the transfer picker)."""
    return jsonify(agents=inbox.agents_on_duty(agent), teams=inbox.teams(), me={"id": agent.id})


@bp.get(f"{API}/conversations/<int:conversation_id>/panel")
@roles(AGENT)
@desk_api
def side_panel(agent: Agent, conversation_id: int):
    return jsonify(panel.side_panel(agent, conversation_id))


@bp.post(f"{API}/conversations/<int:conversation_id>/phone")
@roles(AGENT)
@desk_api
def reveal_phone(agent: Agent, conversation_id: int):
    """The member's full phone number; who saw it and when is written down (audited)."""
    return jsonify(phone=panel.reveal_phone(agent, conversation_id))


@bp.get(f"{API}/search")
@roles(AGENT)
@desk_api
def search(agent: Agent):
    query = request.args.get("q", "")[:100]
    return jsonify(results=library.search(agent, query))


# -- canned replies and the FAQ ------------------------------------------------------------------

def _canned(reply) -> dict[str, object]:
    return {"id": reply.id, "shortcut": reply.shortcut, "body": reply.body, "shared": reply.owner_id is None}


def _faq(entry) -> dict[str, object]:
    return {"id": entry.id, "question": entry.question, "pattern": entry.pattern, "is_regex": entry.is_regex,
            "answer": entry.answer, "priority": entry.priority, "active": entry.active}


@bp.get(f"{API}/canned")
@roles(AGENT)
@desk_api
def canned(agent: Agent):
    """The agent's own and the shared canned replies (the reply box inserts their bodies)."""
    return jsonify(replies=[_canned(r) for r in library.canned_for(agent)])


@bp.post(f"{API}/canned")
@roles(AGENT)
@desk_api
def save_canned(agent: Agent):
    body = json_body(DeskCanned)
    saved = library.save_canned(agent, body.id, shortcut=body.shortcut, body=body.body, shared=body.shared)
    return jsonify(reply=_canned(saved)), 201


@bp.delete(f"{API}/canned/<int:canned_id>")
@roles(AGENT)
@desk_api
def delete_canned(agent: Agent, canned_id: int):
    library.delete_canned(agent, canned_id)
    return jsonify(deleted=canned_id)


@bp.get(f"{API}/faq")
@roles(AGENT)
@desk_api
def faq_list(agent: Agent):
    return jsonify(entries=[_faq(e) for e in library.list_faq()])


@bp.post(f"{API}/faq")
@roles(AGENT)
@desk_api
def save_faq(agent: Agent):
    body = json_body(DeskFaq)
    saved = library.save_faq(body.id, question=body.question, pattern=body.pattern, is_regex=body.is_regex,
                             answer=body.answer, priority=body.priority, active=body.active)
    return jsonify(entry=_faq(saved)), 201


@bp.delete(f"{API}/faq/<int:entry_id>")
@roles(AGENT)
@desk_api
def delete_faq(agent: Agent, entry_id: int):
    library.delete_faq(entry_id)
    return jsonify(deleted=entry_id)
