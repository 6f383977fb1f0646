"""Operator commands, run as an operator would run them (through Flask's CLI)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from marketing.models import Article, QrCode
from tests.conftest import requires_redis

REPO = Path(__file__).resolve().parents[2]


def test_db_upgrade_creates_the_schema_from_migrations(tmp_path):
    """A fresh database, the documented command, every table there."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": url, "REDIS_URL": "memory://"}
    env.pop("JOB_QUEUE", None)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db-upgrade"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"inbound_pushes", "followers", "follower_scans", "articles", "qr_codes", "store_info",
            "alembic_version"} <= tables


def test_demo_data_is_idempotent(app, wx):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo-data"])
    second = runner.invoke(args=["demo-data"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    with app.app_context():
        assert len(wx.db.session.scalars(select(Article)).all()) == 8
        assert len(wx.db.session.scalars(select(QrCode)).all()) == 2


def test_push_menu_sends_the_repo_menu_to_wechat(app, emulator):
    result = app.test_cli_runner().invoke(args=["push-menu", "--base-url", "https://mall.example.com/"])
    assert result.exit_code == 0, result.output
    expected = json.loads((REPO / "config" / "menu.json").read_text(encoding="utf-8"))
    [booking] = [b for b in expected["button"][0]["sub_button"] if b["name"] == "预约服务"]
    assert (booking["type"], booking["url"]) == ("view", "/h5/reservations")  # the H5 reservation pages
    booking["url"] = "https://mall.example.com/h5/reservations"  # a full URL, as WeChat takes only those
    assert emulator.menu == expected
    assert len(expected["button"]) <= 3 and all(len(b.get("sub_button", [])) <= 5 for b in expected["button"])


def test_push_menu_needs_a_base_url_for_a_view_button_written_as_a_path(app, emulator):
    for args in (["push-menu"], ["push-menu", "--base-url", "mall.example.com"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code != 0 and "is a path; pass --base-url" in result.output, result.output
    assert emulator.menu is None
    from_env = app.test_cli_runner().invoke(args=["push-menu"], env={"PUBLIC_BASE_URL": "https://shop.example.cn"})
    assert from_env.exit_code == 0, from_env.output
    assert emulator.menu["button"][0]["sub_button"][-1]["url"] == "https://shop.example.cn/h5/reservations"


def test_push_menu_refuses_a_menu_wechat_would_refuse(app, emulator, tmp_path):
    bad = tmp_path / "menu.json"
    bad.write_text(json.dumps({"button": [{"type": "click", "name": f"b{i}", "key": f"K{i}"} for i in range(4)]}))
    result = app.test_cli_runner().invoke(args=["push-menu", "--file", str(bad)])
    assert result.exit_code != 0 and "1 to 3 top-level buttons" in result.output
    assert emulator.menu is None


def test_qrcode_create_records_the_code_and_writes_its_image(app, wx, emulator, tmp_path):
    out = tmp_path / "counter.png"
    result = app.test_cli_runner().invoke(args=[
        "qrcode", "create", "counter-shoes-l3", "--name", "三楼鞋履柜台", "--follow-up", "本周新品到店",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with app.app_context():
        code = wx.db.session.scalar(select(QrCode).where(QrCode.scene == "counter-shoes-l3"))
    assert code is not None and code.name == "三楼鞋履柜台" and code.follow_up_text == "本周新品到店"
    assert code.expires_at is not None and not code.permanent
    assert emulator.qr_tickets[code.ticket]["scene"] == "counter-shoes-l3"


def test_qrcode_create_rejects_a_scene_wechat_would_reject(app, emulator, tmp_path):
    result = app.test_cli_runner().invoke(args=["qrcode", "create", "x" * 65, "--name", "too long",
                                                "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "1 to 64 characters" in result.output
    assert emulator.calls.get("qrcode/create") is None


@requires_redis
def test_worker_command_runs_queued_jobs_in_a_forked_work_horse(app, wx):
    wx.queue.enqueue("tests.integration.sample_jobs.flaky_then_ok", name="cli-worker", failures=0)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert wx.redis.get("test:jobs:cli-worker:done") is not None


def test_worker_command_explains_when_jobs_run_in_process(app, settings):
    if settings.JOB_QUEUE == "rq":
        pytest.skip("this run uses RQ")
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "JOB_QUEUE is inprocess" in result.output
