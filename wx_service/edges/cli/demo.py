"""The demo store: `demo-data` loads it, `serve-demo` runs the service against the emulator with it
(`./dev demo`)."""
from __future__ import annotations

import logging
import threading
import time

import click
import requests
from flask import Flask
from sqlalchemy import select

from marketing import service as marketing
from marketing.models import QrCode
from members.cards import card_create_body, current_definition
from members.identity import get_member
from members.models import MemberCard
from members.program import load_program
from wx_service.edges.cli.members import push_card
from wx_service.edges.cli.wechat import MENU_FILE, load_menu
from wx_service.edges.demo_data import load_demo_data, load_demo_desk, load_demo_members, load_demo_staff
from wx_service.edges.schedule import start_demo_sweeps
from wx_service.ground.db import upgrade_database
from wx_service.ground.extensions import db, wechat_client

log = logging.getLogger(__name__)


def register_demo_qr_codes() -> None:
    """Create the demo store's counter codes on (emulated) WeChat, as `qrcode create` would."""
    with db.unit_of_work():
        codes = [(c.scene, c.name, c.follow_up_text) for c in db.session.scalars(select(QrCode))]
    for scene, name, follow_up in codes:
        result = wechat_client().qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}})
        with db.unit_of_work():
            marketing.save_qr_code(scene, name, True, result["ticket"], result["url"], None, follow_up)


def register_demo_cards(app: Flask) -> None:
    """Tell the in-process emulator about the stored card and the demo members' codes: a fresh
    emulator forgets what an earlier run created, while the database remembers it."""
    state = app.extensions.get("wx_emulator")
    if state is None:
        return
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


def register(app: Flask) -> None:
    @app.cli.command("demo-data")
    def demo_data() -> None:
        """Load one department store's demo content (idempotent)."""
        with app.extensions["wx"].db.unit_of_work():
            summary = load_demo_data()
        click.echo(summary)

    @app.cli.command("serve-demo")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    def serve_demo(host: str, port: int) -> None:
        """Migrate, load demo data, serve, and push the demo menu to the emulator once up."""
        wx = app.extensions["wx"]
        if not wx.settings.WECHAT_EMULATOR:
            raise click.ClickException("serve-demo is for the emulator; use gunicorn in production")
        upgrade_database(wx.settings.DATABASE_URL)
        with wx.db.unit_of_work():
            click.echo(load_demo_data())
            staff_line = load_demo_staff()
            desk_line = load_demo_desk()

        def set_up_emulator_when_up() -> None:
            for _ in range(100):
                try:
                    requests.get(f"http://{host}:{port}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            with app.app_context():
                try:
                    wechat_client().menu.create(load_menu(MENU_FILE, f"http://{host}:{port}"))
                    register_demo_qr_codes()
                    click.echo(push_card())
                    with wx.db.unit_of_work():
                        load_demo_members()  # the demo members' cards, now that the card exists
                    register_demo_cards(app)
                except Exception as exc:  # the demo still runs; the page says no menu was pushed
                    log.warning("could not set up the emulator (is WECHAT_API_BASE the emulator?): %s", exc)
            click.echo(f"\n  Shopper page:  http://{host}:{port}/_emulator/\n  Webhook:       http://{host}:{port}/wechat\n"
                       f"  Staff console: http://{host}:{port}/console/  ({staff_line.split('(')[1]}\n"
                       f"  Desk:          http://{host}:{port}/console/desk  ({desk_line.split('(')[1]}\n")

        threading.Thread(target=set_up_emulator_when_up, daemon=True).start()
        if wx.settings.JOB_QUEUE == "inprocess":
            start_demo_sweeps(wx.queue)
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)
