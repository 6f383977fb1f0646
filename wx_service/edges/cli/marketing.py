"""Parametric QR codes for counters and campaigns: `flask --app wsgi qrcode create`."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

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
