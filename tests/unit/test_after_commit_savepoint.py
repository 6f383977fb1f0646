"""A savepoint that rolls back (a unique-key race handled in place, as coupons.issue and
ledger.append do) must not drop the after-commit jobs the outer transaction already queued."""
from __future__ import annotations

from sqlalchemy import text

from wx_service.ground.db import Database


def test_savepoint_rollback_keeps_the_outer_after_commit_actions(tmp_path):
    db = Database()
    db.init(f"sqlite:///{tmp_path / 'a.db'}")
    ran: list[str] = []
    with db.unit_of_work() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    with db.unit_of_work() as session:
        db.after_commit(lambda: ran.append("greeting"))
        try:
            with session.begin_nested():
                session.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("lost the race")
        except RuntimeError:
            pass
    assert ran == ["greeting"]
    try:
        with db.unit_of_work():
            db.after_commit(lambda: ran.append("never"))
            raise RuntimeError("the whole transaction fails")
    except RuntimeError:
        pass
    assert ran == ["greeting"]
    db.dispose()
