"""Who may see what: the desk's one access rule, in one place.

An agent sees and works the conversations of their own team and those that came with no team
(the store's general queue: menu button, 人工 typed in the OA). A conversation of another team
(another counter's) is invisible to them: asking for it answers exactly as for a conversation that
does not exist, so ids cannot be probed. Staff who are not agents see nothing of the desk.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select

from service_desk.exceptions import NotAnAgent, UnknownConversation
from service_desk.models import Agent, Conversation, Message
from wx_service.ground.extensions import db
from wx_service.ground.models import InboundPush


def agent_for_staff(staff_id: int) -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.staff_id == staff_id))
    if agent is None:
        raise NotAnAgent("you are not a customer-service agent: ask an admin to add you to a team")
    return agent


def visible_to(agent: Agent) -> ColumnElement[bool]:
    """The WHERE clause of the conversations `agent` may see."""
    return or_(Conversation.team_id.is_(None), Conversation.team_id == agent.team_id)


def can_see(agent: Agent, conversation: Conversation) -> bool:
    return conversation.team_id is None or conversation.team_id == agent.team_id


def conversation_for(agent: Agent, conversation_id: int) -> Conversation:
    """The conversation, if `agent` may see it; UnknownConversation otherwise (either way)."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or not can_see(agent, conversation):
        raise UnknownConversation(f"no conversation {conversation_id}")
    return conversation


def conversation_for_media(agent: Agent, media_id: str) -> Conversation:
    """The conversation a piece of WeChat media (a shopper's picture or voice, an agent's picture)
    was seen in, if `agent` may see it: the console fetches media only for what it may show."""
    conversation_id = db.session.scalar(select(InboundPush.conversation_id).where(
        InboundPush.media_id == media_id, InboundPush.conversation_id.is_not(None)).limit(1))
    if conversation_id is None:
        conversation_id = db.session.scalar(select(Message.conversation_id).where(Message.media_id == media_id).limit(1))
    if conversation_id is None:
        raise UnknownConversation("no conversation shows this media")
    return conversation_for(agent, conversation_id)
