"""Structured logs: one JSON object per line, carrying the push being handled.

The webhook binds the message id and a masked openid into a context variable; every log line
written while that push is handled carries them, whatever module writes it. A call site adds its
own fields with `extra={"out_trade_no": ...}`: both formatters print every one of them.
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


# Everything a LogRecord carries of its own; any other attribute came from the call site's
# `extra=` (logging sets each of its keys as an attribute) and is a field to print.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "ctx", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The one logging rule: every key a call site passes in `extra=` is printed by both
    formatters, after the fields bound with `log_context`/`bind`."""
    return {key: value for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "ctx", {}),
        }
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = {**getattr(record, "ctx", {}), **record_fields(record)}
        ctx = " ".join(f"{k}={v}" for k, v in pairs.items())
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
