"""Setting up the desk from the command line: teams, agents, the roster, and what is refused."""
from __future__ import annotations


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_an_operator_sets_up_a_counter_team_and_its_agents(app):
    assert cli(app, "staff", "add", "lin", "林小姐").exit_code == 0
    assert cli(app, "desk", "team-add", "LANCOME", "兰蔻专柜").exit_code == 0
    added = cli(app, "desk", "agent-add", "lin", "LANCOME", "--max-open", "3")
    assert added.exit_code == 0, added.output
    assert "up to 3 at once" in added.output
    listing = cli(app, "desk", "agents").output
    assert "LANCOME" in listing and "lin" in listing and "0/3" in listing


def test_the_desk_commands_refuse_what_cannot_be_made(app):
    assert "no staff member ghost" in cli(app, "desk", "agent-add", "ghost", "LANCOME").output
    assert cli(app, "desk", "team-add", "bad code!", "x").exit_code != 0
    assert cli(app, "desk", "team-add", "LANCOME", "兰蔻").exit_code == 0
    again = cli(app, "desk", "team-add", "LANCOME", "兰蔻")
    assert again.exit_code != 0 and "already exists" in again.output
    assert cli(app, "staff", "add", "wang", "王先生").exit_code == 0
    assert "no team NOPE" in cli(app, "desk", "agent-add", "wang", "NOPE").output
