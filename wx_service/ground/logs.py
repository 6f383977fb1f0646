"""Structured logs: one JSON object per line, carrying the push being handled.

The webhook binds the message id and a masked openid into a context variable; every log line
written while that push is handled carries them, whatever module writes it.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})


def mask_openid(openid: str | None) -> str:
    """Keep enough of an openid to correlate log lines, not enough to identify a shopper."""
    if not openid:
        return ""
    if len(openid) <= 8:
        return "***"
    return f"{openid[:4]}***{openid[-4:]}"


@contextlib.contextmanager
def log_context(**values: str) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: str) -> None:
    """Add fields to the current context (until the enclosing log_context ends)."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v}})


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ctx = _context.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "ctx", {}),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in getattr(record, "ctx", {}).items())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            ctx = " ".join(filter(None, [ctx, *(f"{k}={v}" for k, v in extra.items())]))
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if ctx:
            line += f" [{ctx}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(fmt: str, level: str) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_wx_service", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._wx_service = True  # type: ignore[attr-defined]
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(max(logging.getLevelName(level), logging.INFO)
                                           if isinstance(logging.getLevelName(level), int) else logging.INFO)
