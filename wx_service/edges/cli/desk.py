"""The customer-service desk's teams and agents: `flask --app wsgi desk ...`."""
from __future__ import annotations

import click
from flask import Flask

from service_desk import roster


def register(app: Flask) -> None:
    @app.cli.group("desk")
    def desk_group() -> None:
        """One-key customer service: teams and agents."""

    @desk_group.command("team-add")
    @click.argument("code")
    @click.argument("name")
    def team_add(code: str, name: str) -> None:
        """Add a team (a counter's code, e.g. LANCOME, or a desk such as `service`)."""
        with app.extensions["wx"].db.unit_of_work():
            try:
                team = roster.add_team(code, name)
            except roster.RosterError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"team {team.code}: {team.name}")

    @desk_group.command("agent-add")
    @click.argument("username")
    @click.argument("team_code")
    @click.option("--max-open", type=int, default=5, show_default=True,
                  help="Conversations the agent holds at once before new ones go to others.")
    def agent_add(username: str, team_code: str, max_open: int) -> None:
        """Make a staff member an agent of a team (or move them there)."""
        with app.extensions["wx"].db.unit_of_work():
            try:
                agent = roster.add_agent(username, team_code, max_open)
            except roster.RosterError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"{username}: agent {agent.id} of {team_code}, up to {agent.max_open} at once")

    @desk_group.command("agents")
    def agents() -> None:
        """Teams, their agents, who is online and how many conversations each holds."""
        with app.extensions["wx"].db.unit_of_work():
            for team, members in roster.roster():
                click.echo(f"{team.code}  {team.name}")
                for agent, staff in members:
                    click.echo(f"    {staff.username:<16} {agent.status:<7} {agent.open_load}/{agent.max_open}")
