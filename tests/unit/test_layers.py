"""The layout holds: the ground imports no domain package or edge, domain packages and handlers
never reach an edge, and no two modules import each other (tests/layers.py has the rules)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from tests.layers import RULES, import_cycles, layer_violations

REPO = Path(__file__).resolve().parents[2]


def test_every_import_follows_the_layer_rules():
    assert layer_violations(REPO) == []


def test_no_two_modules_import_each_other():
    assert import_cycles(REPO) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return tmp_path


# The checks must be able to fail: each planted mistake below is one a hurried change could make.
BASE = {
    "config/__init__.py": "",
    "wx_service/__init__.py": '"""docstring only"""\n',
    "wx_service/ground/__init__.py": "",
    "wx_service/ground/db.py": "import sqlalchemy\n",
    "wx_service/edges/__init__.py": "",
    "wx_service/edges/webhook.py": "from members import identity\nfrom handlers import routes\n",
    "members/__init__.py": "",
    "members/identity.py": "from wx_service.ground.db import sqlalchemy\n",
    "handlers/__init__.py": "",
    "handlers/routes.py": "from members import identity\n",
}


def test_the_rules_pass_a_tree_that_follows_them(tmp_path):
    root = _tree(tmp_path, BASE)
    assert layer_violations(root) == []
    assert import_cycles(root) == []


def test_a_ground_module_importing_a_domain_package_is_caught_even_inside_a_function(tmp_path):
    root = _tree(tmp_path, {**BASE, "wx_service/ground/queue.py": """
        def run():
            from members.identity import get_member
    """})
    [problem] = layer_violations(root)
    assert problem.startswith("wx_service/ground/queue.py:3: wx_service.ground.queue (wx_service.ground) "
                              "imports members.identity (members)")


def test_a_domain_module_importing_an_edge_or_flask_request_is_caught(tmp_path):
    root = _tree(tmp_path, {**BASE, "members/cards.py": """
        from flask import current_app, request
        from wx_service.edges import webhook
    """})
    problems = layer_violations(root)
    assert len(problems) == 2
    assert any("imports flask.request" in p for p in problems)
    assert any("imports wx_service.edges.webhook (wx_service.edges)" in p for p in problems)


def test_a_job_queued_by_name_counts_as_an_import(tmp_path):
    root = _tree(tmp_path, {**BASE, "members/jobs.py": """
        def later(enqueue_after_commit):
            enqueue_after_commit("wx_service.edges.webhook.deliver_late_reply", openid="o")
    """})
    [problem] = layer_violations(root)
    assert "queues a job in wx_service.edges.webhook" in problem


def test_the_package_root_and_the_ground_may_not_reach_up(tmp_path):
    root = _tree(tmp_path, {**BASE, "wx_service/__init__.py": "from wx_service.edges import webhook\n",
                            "wx_service/ground/extensions.py": "from wx_service import app\n",
                            "wx_service/app.py": "from wx_service.edges import webhook\n"})
    problems = layer_violations(root)
    assert [p.split(":")[0] for p in problems] == ["wx_service/__init__.py", "wx_service/ground/extensions.py"]


def test_a_package_without_a_rule_is_reported(tmp_path):
    root = _tree(tmp_path, BASE)
    problems = layer_violations(root, rules={k: v for k, v in RULES.items() if k != "handlers"})
    assert "handlers/routes.py: module handlers.routes is in no layer; add its package to the rules" in problems


def test_a_circle_between_two_modules_of_one_package_is_caught(tmp_path):
    root = _tree(tmp_path, {**BASE, "members/points.py": "from members.identity import get_member\n",
                            "members/identity.py": "def merge():\n    from members.points import recompute\n"})
    assert import_cycles(root) == [["members.identity", "members.points"]]
