"""Parametric QR codes for counters and campaigns (`flask --app wsgi qrcode create`), and brand
news to a brand's subscribers (`flask --app wsgi brand-news announce|progress|sweep`)."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from marketing import announcements, news_jobs
from marketing import service as marketing
from wx_service.ground.extensions import wechat_client
from wx_service.ground.qr_images import save_qr_png


def register(app: Flask) -> None:
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

    @app.cli.group("brand-news")
    def news_group() -> None:
        """New arrivals and brand events to the brands' subscribers."""

    @news_group.command("announce")
    @click.argument("kind", type=click.Choice(["new_arrival", "activity"]))
    @click.argument("item_id", type=int)
    def news_announce(kind: str, item_id: int) -> None:
        """Tell the item's brands' subscribers about it (once per item; the jobs send it)."""
        with app.extensions["wx"].db.unit_of_work():
            try:
                made = announcements.announce(kind, item_id)
            except announcements.UnknownItem as exc:
                raise click.ClickException(str(exc)) from exc
            if made is None:
                raise click.ClickException(f"{kind} {item_id} was announced already")
            click.echo(f"announcement {made.id}: {made.subscribers} subscribers, about {made.chunks_total} chunks queued")

    @news_group.command("progress")
    @click.argument("announcement_id", type=int)
    def news_progress(announcement_id: int) -> None:
        """Chunks done and deliveries by outcome."""
        with app.extensions["wx"].db.unit_of_work():
            shown = announcements.progress_json(announcements.refresh_progress(announcement_id))
        counts = ", ".join(f"{k} {v}" for k, v in shown["counts"].items() if v)
        click.echo(f"{shown['kind']} {shown['item_id']} {shown['title']}: {shown['state']}, chunks "
                   f"{shown['chunks_done']}/{shown['chunks_total']}; {counts or 'nothing yet'}")

    @news_group.command("sweep")
    def news_sweep() -> None:
        """Queue again the chunks whose worker died (what the scheduler does every minute)."""
        with app.extensions["wx"].db.unit_of_work():
            counts = news_jobs.resume_stalled()
        click.echo(f"requeued {counts['requeued']} chunk(s)")
