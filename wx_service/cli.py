"""Operator commands: `flask --app wsgi <command>`. Each runs in one transaction where it writes."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import click
from flask import Flask

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def upgrade_database(url: str) -> None:
    """Apply every Alembic migration to `url` (the schema's only way to change)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "head")


def _validate_menu(menu: dict) -> None:
    """WeChat's own limits, checked before calling it: 3 buttons, 5 sub-buttons, keys present."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise click.ClickException("a menu has 1 to 3 top-level buttons")
    for button in buttons:
        subs = button.get("sub_button")
        if subs is not None:
            if not 1 <= len(subs) <= 5:
                raise click.ClickException(f"{button.get('name')}: 1 to 5 sub-buttons")
            children = subs
        else:
            children = [button]
        for child in children:
            kind = child.get("type")
            if kind in {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "location_select"} and not child.get("key"):
                raise click.ClickException(f"{child.get('name')}: a {kind} button needs a key")
            if kind == "view" and not child.get("url"):
                raise click.ClickException(f"{child.get('name')}: a view button needs a url")


def register_demo_qr_codes() -> None:
    """Create the demo store's counter codes on (emulated) WeChat, as `qrcode create` would."""
    from sqlalchemy import select

    from marketing import service as marketing
    from marketing.models import QrCode
    from wx_service.extensions import db, wechat_client

    with db.unit_of_work():
        codes = [(c.scene, c.name, c.follow_up_text) for c in db.session.scalars(select(QrCode))]
    for scene, name, follow_up in codes:
        result = wechat_client().qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}})
        with db.unit_of_work():
            marketing.save_qr_code(scene, name, True, result["ticket"], result["url"], None, follow_up)


def register_cli(app: Flask) -> None:
    from wx_service.cli_cards import register_card_cli
    from wx_service.cli_members import register_member_cli
    from wx_service.cli_pay import register_pay_cli

    register_card_cli(app)
    register_member_cli(app)
    register_pay_cli(app)

    @app.cli.command("db-upgrade")
    def db_upgrade() -> None:
        """Apply all migrations to DATABASE_URL."""
        upgrade_database(app.extensions["wx"].settings.DATABASE_URL)
        click.echo("database is at the latest migration")

    @app.cli.command("demo-data")
    def demo_data() -> None:
        """Load one department store's demo content (idempotent)."""
        from wx_service.demo_data import load_demo_data

        with app.extensions["wx"].db.unit_of_work():
            summary = load_demo_data()
        click.echo(summary)

    @app.cli.command("push-menu")
    @click.option("--file", "path", default=str(REPO_ROOT / "config" / "menu.json"), show_default=True,
                  type=click.Path(exists=True, dir_okay=False))
    def push_menu(path: str) -> None:
        """Create the OA's custom menu from a JSON file in the repo."""
        menu = json.loads(Path(path).read_text(encoding="utf-8"))
        _validate_menu(menu)
        from wx_service.extensions import wechat_client

        wechat_client().menu.create(menu)
        click.echo(f"menu pushed: {len(menu['button'])} buttons")

    @app.cli.group("qrcode")
    def qrcode_group() -> None:
        """Parametric QR codes for counters and campaigns."""

    @qrcode_group.command("create")
    @click.argument("scene")
    @click.option("--name", required=True, help="What the code is for, e.g. 'L2 cosmetics counter'.")
    @click.option("--permanent", is_flag=True, help="A permanent code (capped at 100,000 per account).")
    @click.option("--expire-seconds", type=int, default=2_592_000, show_default=True,
                  help="Lifetime of a temporary code (at most 30 days).")
    @click.option("--follow-up", default="", help="Text sent to the shopper after a scan.")
    @click.option("--out", type=click.Path(dir_okay=False), help="PNG file to write (default: <scene>.png).")
    def qrcode_create(scene: str, name: str, permanent: bool, expire_seconds: int, follow_up: str,
                      out: str | None) -> None:
        """Create a parametric QR code on WeChat, record it and save its image."""
        from marketing import service as marketing
        from wx_service.extensions import wechat_client
        from wx_service.qr_images import save_qr_png

        try:
            marketing.validate_scene(scene, permanent, expire_seconds)
        except marketing.InvalidScene as exc:
            raise click.ClickException(str(exc)) from exc
        body: dict = {
            "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
        if not permanent:
            body["expire_seconds"] = expire_seconds
        result = wechat_client().qrcode.create(body)
        with app.extensions["wx"].db.unit_of_work():
            marketing.save_qr_code(scene, name, permanent, result["ticket"], result["url"],
                                   None if permanent else int(result.get("expire_seconds", expire_seconds)),
                                   follow_up)
        target = Path(out or f"{scene}.png")
        save_qr_png(result["url"], target)
        click.echo(f"{name}: scene {scene} -> {result['url']}; image saved to {target}")

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
    def worker(burst: bool) -> None:
        """Run the background job worker (RQ, with the scheduler that runs retries)."""
        wx = app.extensions["wx"]
        if wx.settings.JOB_QUEUE != "rq":
            raise click.ClickException("JOB_QUEUE is inprocess: jobs run inside the web process; "
                                       "set REDIS_URL (and JOB_QUEUE=rq) to run a separate worker")
        from rq import Worker

        from wx_service.queue import QUEUE_NAME

        # maintenance_interval: how often an idle worker tries to take over RQ's scheduler lock
        # (delayed jobs and retries) from a worker that died without releasing it; RQ's default
        # is 10 minutes.
        Worker([QUEUE_NAME], connection=wx.redis, maintenance_interval=30).work(with_scheduler=True, burst=burst)

    @app.cli.command("serve-demo")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    def serve_demo(host: str, port: int) -> None:
        """Migrate, load demo data, serve, and push the demo menu to the emulator once up."""
        wx = app.extensions["wx"]
        if not wx.settings.WECHAT_EMULATOR:
            raise click.ClickException("serve-demo is for the emulator; use gunicorn in production")
        upgrade_database(wx.settings.DATABASE_URL)
        from wx_service.demo_data import load_demo_data

        from wx_service.demo_data import load_demo_staff

        with wx.db.unit_of_work():
            click.echo(load_demo_data())
            staff_line = load_demo_staff()

        def push_menu_when_up() -> None:
            import time

            import requests

            from wx_service.extensions import wechat_client

            for _ in range(100):
                try:
                    requests.get(f"http://{host}:{port}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            menu = json.loads((REPO_ROOT / "config" / "menu.json").read_text(encoding="utf-8"))
            with app.app_context():
                try:
                    wechat_client().menu.create(menu)
                    register_demo_qr_codes()
                    from wx_service.cli_cards import push_card, register_demo_cards
                    from wx_service.demo_data import load_demo_members

                    click.echo(push_card())
                    with wx.db.unit_of_work():
                        load_demo_members()  # the demo members' cards, now that the card exists
                    register_demo_cards(app)
                except Exception as exc:  # the demo still runs; the page says no menu was pushed
                    log.warning("could not set up the emulator (is WECHAT_API_BASE the emulator?): %s", exc)
            click.echo(f"\n  Shopper page:  http://{host}:{port}/_emulator/\n  Webhook:       http://{host}:{port}/wechat\n"
                       f"  Staff console: http://{host}:{port}/console/  ({staff_line.split('(')[1]}\n")

        import threading

        threading.Thread(target=push_menu_when_up, daemon=True).start()
        if wx.settings.JOB_QUEUE == "inprocess":
            from wx_service.scheduler import start_demo_sweeps

            start_demo_sweeps(wx.queue)
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)

    @app.cli.command("routes-table")
    def routes_table() -> None:
        """Print which handler answers which push."""
        for route in app.extensions["wx_webhook"].router.routes:
            click.echo(route.describe())
