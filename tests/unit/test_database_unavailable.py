"""Which database errors mean "the database is away" (logged as one line, answered 500 for a retry)
and which are a statement the database refused (logged with a traceback: a bug to look at)."""
from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError

from wx_service.ground.db import database_unavailable


class OperationalErrorFromDriver(Exception):
    pass


OperationalErrorFromDriver.__name__ = "OperationalError"  # as psycopg's raw class is named


def test_a_dead_connection_is_unavailable_however_it_is_wrapped():
    assert database_unavailable(OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked")))
    assert database_unavailable(OperationalErrorFromDriver("connection to server at 127.0.0.1 failed"))
    wrapped = RuntimeError("handler failed")
    wrapped.__cause__ = OperationalErrorFromDriver("the database system is shutting down")
    assert database_unavailable(wrapped)


def test_a_refused_statement_is_not():
    assert not database_unavailable(IntegrityError("INSERT …", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not database_unavailable(ValueError("bad"))
