"""The migrations build the schema the models describe: after `alembic upgrade head`, Alembic's own
comparison finds nothing to add, drop or alter. A model changed without its migration (or a
migration lost in a merge) fails here, not in production's first INSERT."""
from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from wx_service.app import all_metadata
from wx_service.ground.db import upgrade_database


def _differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "compare_server_default": False})
            return compare_metadata(context, all_metadata())
    finally:
        engine.dispose()


def test_sqlite_schema_from_migrations_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade_database(url)
    assert _differences(url) == []


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
                    reason="needs a real Postgres (set DATABASE_URL, as .ci/run does)")
def test_postgres_schema_from_migrations_matches_the_models():
    """In a scratch database of the same server, so the suite's own database is left alone."""
    base = os.environ["DATABASE_URL"]
    name = f"schema_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_database(scratch)
        assert _differences(scratch) == []
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
