"""The Official Account itself: its custom menu, and which handler answers which push."""
from __future__ import annotations

import json
import re
from pathlib import Path

import click
from flask import Flask

from config.settings import REPO_ROOT
from wx_service.ground.extensions import wechat_client

MENU_FILE = Path(REPO_ROOT) / "config" / "menu.json"


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


def _absolute(menu: dict, base_url: str | None) -> None:
    """A view button's url written as a path ("/h5/reservations", as the repo's file does: the
    host differs per deployment) is made absolute on `base_url`; WeChat takes only full URLs."""
    for button in menu.get("button") or []:
        for child in button.get("sub_button") or [button]:
            url = child.get("url")
            if child.get("type") != "view" or not isinstance(url, str) or not url.startswith("/"):
                continue
            if not base_url or not re.match(r"^https?://[^\s/]+$", base_url.rstrip("/")):
                raise click.ClickException(f"{child.get('name')}: the url {url} is a path; pass --base-url "
                                           "https://your.host (or set PUBLIC_BASE_URL) to make it a full URL")
            child["url"] = base_url.rstrip("/") + url


def load_menu(path: Path, base_url: str | None = None) -> dict:
    """A menu file, checked against WeChat's limits before anything calls WeChat."""
    menu = json.loads(path.read_text(encoding="utf-8"))
    _validate_menu(menu)
    _absolute(menu, base_url)
    return menu


def register(app: Flask) -> None:
    @app.cli.command("push-menu")
    @click.option("--file", "path", default=str(MENU_FILE), show_default=True,
                  type=click.Path(exists=True, dir_okay=False))
    @click.option("--base-url", envvar="PUBLIC_BASE_URL", default=None,
                  help="the service's public https://host, for view buttons whose url is a path")
    def push_menu(path: str, base_url: str | None) -> None:
        """Create the OA's custom menu from a JSON file in the repo."""
        menu = load_menu(Path(path), base_url)
        wechat_client().menu.create(menu)
        click.echo(f"menu pushed: {len(menu['button'])} buttons")

    @app.cli.command("routes-table")
    def routes_table() -> None:
        """Print which handler answers which push."""
        for route in app.extensions["wx_webhook"].router.routes:
            click.echo(route.describe())
