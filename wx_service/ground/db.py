"""The database: declarative base, a session per request or job, and after-commit actions.

Services flush and never commit; the edge (a view or a job runner) opens one unit of work and
commits it. Work that must happen only if the commit happened (queueing a job, sending a message)
is registered with `after_commit` and runs once the transaction is durable.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use utcnow()")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def insert_for(session: Session, model: type) -> Any:
    """INSERT for the session's database, with its ON CONFLICT clause (Postgres and SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


def lock_for_transaction(session: Session, key: int) -> None:
    """Serialize, across processes, the transactions that take the same `key` until they end
    (Postgres: pg_advisory_xact_lock). SQLite, the single-process embedded default, lets one
    writer at a time anyway, so nothing is needed there."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


_AFTER_COMMIT = "after_commit_actions"


class Database:
    """Engine plus a thread-scoped session; one instance per app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        # Postgres only: a second, smaller pool whose connections are in autocommit mode, for a
        # single statement that must be durable on its own (the webhook's record of a push that
        # wrote nothing else). No BEGIN/COMMIT round trips and no rollback when a connection goes
        # back to the pool; the session's pool keeps its transactional connections.
        self.autocommit_engine: Engine | None = None
        self._factory: sessionmaker | None = None
        self.session: scoped_session | None = None  # type: ignore[type-arg]
        self._pid = os.getpid()

    def init(self, url: str) -> None:
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                # One shared in-memory database for every thread of the process.
                kwargs["poolclass"] = StaticPool
        else:
            # No pre-ping: it costs a round trip per request. After a database restart one request
            # per pooled connection fails with a 500, which WeChat retries (the dedup key is freed).
            kwargs.update(pool_pre_ping=False, pool_recycle=1800, pool_size=5, max_overflow=10)
            self.autocommit_engine = create_engine(
                url, future=True, isolation_level="AUTOCOMMIT", pool_reset_on_return=None,
                pool_pre_ping=False, pool_recycle=1800, pool_size=4, max_overflow=8)
        self.engine = create_engine(url, **kwargs)
        self._pid = os.getpid()
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.session = scoped_session(self._factory)
        event.listen(self._factory, "after_commit", _run_after_commit)
        event.listen(self._factory, "after_rollback", _drop_after_commit)
        event.listen(self._factory, "after_soft_rollback", _drop_after_commit)

    def new_session(self) -> Session:
        assert self._factory is not None, "Database.init() was not called"
        return self._factory()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` after the current transaction commits; drop it if it rolls back."""
        assert self.session is not None
        self.session().info.setdefault(_AFTER_COMMIT, []).append(action)

    def after_fork(self) -> None:
        """In a forked process (an RQ work-horse), never reuse the parent's pooled connections."""
        if self.engine is not None and os.getpid() != self._pid:
            self.engine.dispose(close=False)
            if self.autocommit_engine is not None:
                self.autocommit_engine.dispose(close=False)
            self._pid = os.getpid()

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception, always release."""
        assert self.session is not None
        self.after_fork()
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            self.session.remove()

    def dispose(self) -> None:
        if self.session is not None:
            self.session.remove()
        if self.engine is not None:
            self.engine.dispose()
        if self.autocommit_engine is not None:
            self.autocommit_engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _run_after_commit(session: Session) -> None:
    # SQLAlchemy fires after_commit for a savepoint's release too (begin_nested, as the ledger and
    # coupons use): the transaction is still open then, so its actions must wait for the real commit.
    if session.in_nested_transaction():
        return
    actions = session.info.pop(_AFTER_COMMIT, [])
    for action in actions:
        try:
            action()
        except Exception as exc:
            # The transaction is durable: failing the request now would tell the caller it was
            # not (WeChat Pay would resend a stored notification, a view would report an error
            # for work that was done). The action is lost; say which, and the sweeps catch up.
            log.error("after-commit action failed; the transaction stands: %s: %s", type(exc).__name__, exc,
                      extra={"action": getattr(action, "label", getattr(action, "__qualname__", repr(action)))})


def _drop_after_commit(session: Session, previous=None) -> None:
    """Drop the actions when the transaction rolls back; a savepoint's rollback (begin_nested,
    e.g. a lost unique-key race handled in place) leaves the outer transaction's actions alone."""
    if (previous.nested if previous is not None else session.in_nested_transaction()):
        return
    session.info.pop(_AFTER_COMMIT, None)


def upgrade_database(url: str) -> None:
    """Apply every Alembic migration to `url` (the schema's only way to change)."""
    from alembic import command
    from alembic.config import Config

    from config.settings import REPO_ROOT

    cfg = Config(os.path.join(REPO_ROOT, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(REPO_ROOT, "migrations"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "head")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or the connection died (an
    OperationalError or InterfaceError, wrapped by SQLAlchemy or raw from the driver), as
    opposed to a statement it refused. Backend-neutral: psycopg and sqlite3 name them alike."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if type(seen).__name__ in ("OperationalError", "InterfaceError"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
