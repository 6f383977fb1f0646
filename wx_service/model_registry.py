"""Imports every model module so that Base.metadata knows all tables (for Alembic and tests)."""
from __future__ import annotations

from wx_service.db import Base


def all_metadata():
    import marketing.models  # noqa: F401
    import members.models  # noqa: F401
    import payments.models  # noqa: F401
    import wx_service.models  # noqa: F401

    return Base.metadata
