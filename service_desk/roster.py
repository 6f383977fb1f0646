"""Teams and agents as an operator sets them up (the CLI), and an agent stood down when they may no
longer work the desk (the staff page's deactivation and role revocation). Flushes, never commits."""
from __future__ import annotations

import re

from sqlalchemy import select, update

from members import audit
from members import staff as staff_service
from members.models import Staff
from service_desk import events
from service_desk.exceptions import DeskError
from service_desk.models import AWAY, ONLINE, Agent, Team
from wx_service.ground.extensions import db

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class RosterError(DeskError):
    """A team or agent the operator asked for that cannot be made as asked."""


def add_team(code: str, name: str) -> Team:
    """A team: a counter (its code is what a `counter:<code>` session-from names) or a desk."""
    if not _CODE.match(code):
        raise RosterError("a team code is 1-32 letters, digits, _ or -")
    if not name.strip() or len(name) > 64:
        raise RosterError("a team name is 1-64 characters")
    if db.session.scalar(select(Team.id).where(Team.code == code)) is not None:
        raise RosterError(f"team {code} already exists")
    team = Team(code=code, name=name.strip())
    db.session.add(team)
    db.session.flush()
    return team


def add_agent(username: str, team_code: str, max_open: int = 5, *, by_staff_id: int | None = None) -> Agent:
    """Make a staff member an agent of a team, or move them to it (their open conversations stay).
    Audited as `role.desk_agent` by `by_staff_id` (None: the CLI), beside the role's own grant."""
    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    if staff is None:
        raise RosterError(f"no staff member {username}; add them first (flask --app wsgi staff add)")
    team = db.session.scalar(select(Team).where(Team.code == team_code))
    if team is None:
        raise RosterError(f"no team {team_code}")
    if not 1 <= max_open <= 50:
        raise RosterError("an agent holds 1 to 50 conversations at once")
    agent = db.session.scalar(select(Agent).where(Agent.staff_id == staff.id))
    if agent is None:
        agent = Agent(staff_id=staff.id, team_id=team.id, max_open=max_open, open_load=0, status="away")
        db.session.add(agent)
    else:
        agent.team_id, agent.max_open = team.id, max_open
    # The console lets in holders of the `agent` role; the row says which team. Made together here,
    # so an agent is never shut out of the desk they were added to.
    staff_service.grant_role(username, staff_service.AGENT, by_staff_id=by_staff_id)
    db.session.flush()
    audit.record(by_staff_id, "role.desk_agent", f"staff:{staff.id}",
                 after={"agent": agent.id, "team": team_code, "max_open": agent.max_open},
                 detail=audit.CLI if by_staff_id is None else "")
    return agent


def stand_down(staff_id: int) -> bool:
    """A staff member who may no longer work the desk (deactivated, or their agent role revoked)
    goes away, so no new conversation is offered to them; the ones they hold stay theirs until
    transferred. Whether they were online. Flushes."""
    agent_id = db.session.scalar(select(Agent.id).where(Agent.staff_id == staff_id))
    if agent_id is None:
        return False
    moved = db.session.execute(update(Agent).where(Agent.id == agent_id, Agent.status == ONLINE)
                               .values(status=AWAY)).rowcount
    if moved:
        events.publish_agent_after_commit(db.session.get(Agent, agent_id, populate_existing=True))
    return bool(moved)


def roster() -> list[tuple[Team, list[tuple[Agent, Staff]]]]:
    teams = db.session.scalars(select(Team).order_by(Team.code)).all()
    rows = db.session.execute(select(Agent, Staff).join(Staff, Staff.id == Agent.staff_id)
                              .order_by(Staff.username)).all()
    return [(team, [(a, s) for a, s in rows if a.team_id == team.id]) for team in teams]
