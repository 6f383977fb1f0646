"""Operator commands for the WeChat member card: `flask --app wsgi card push`."""
from __future__ import annotations

import click
from flask import Flask


def push_card() -> str:
    """Create the card once, then keep WeChat's copy equal to config/member_card.json.

    Two transactions: the card_id is stored as soon as card/create returns it, so a failure while
    setting the form leaves a card the next run finishes, never a second card."""
    from members import jobs
    from wx_service.extensions import db

    with db.unit_of_work():
        created = jobs.create_card_if_missing()
    with db.unit_of_work():
        return jobs.bring_card_up_to_date(just_created=created)


def register_demo_cards(app: Flask) -> None:
    """Tell the in-process emulator about the stored card and the demo members' codes: a fresh
    emulator forgets what an earlier run created, while the database remembers it."""
    from sqlalchemy import select

    from members.cards import current_definition
    from members.identity import get_member
    from members.models import MemberCard
    from members.program import load_program
    from wx_service.extensions import db

    state = app.extensions.get("wx_emulator")
    if state is None:
        return
    from members.cards import card_create_body

    with db.unit_of_work():
        definition = current_definition()
        if definition is None:
            return
        with state.lock:
            state.cards.setdefault(definition.card_id, {"card": card_create_body()["card"], "form": None})
            for card in db.session.scalars(select(MemberCard).where(MemberCard.status != "deleted")):
                member = get_member(card.member_id)
                state.card_codes.setdefault(card.code, {
                    "card_id": card.card_id, "openid": card.openid, "status": "NORMAL",
                    "has_active": card.status == "active", "bonus": member.points_balance,
                    "custom_fields": {1: load_program().level(member.level).name}, "answers": {},
                    "issued_at": 0, "outer_str": card.outer_str, "membership_number": card.code})


def register_card_cli(app: Flask) -> None:
    @app.cli.group("card")
    def card_group() -> None:
        """The WeChat member card."""

    @card_group.command("push")
    def card_push() -> None:
        """Create the member card on WeChat, or update it when config/member_card.json changed."""
        try:
            click.echo(push_card())
        except Exception as exc:
            raise click.ClickException(f"card push failed: {exc}") from exc
