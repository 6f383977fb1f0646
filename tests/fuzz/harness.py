"""What every fuzzed entry point must hold to, and the hostile values thrown at it.

For each generated input: the answer is never a 5xx, nothing is logged with a traceback, and an
input that was refused (4xx) changed nothing in the database. `Harness.check` asserts all three
and counts the inputs (bench/fuzz_entry_points.py reads the counts from FUZZ_REPORT).
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable

from hypothesis import strategies as st
from sqlalchemy import select, text

from payments.models import Order, Refund
from wx_service.app import all_metadata

# -- values ----------------------------------------------------------------------------------------

# Every Unicode category, lone surrogates, NUL and the byte-order mark included.
odd_text = st.text(st.characters(codec=None), max_size=64) | st.sampled_from(
    ["", "\x00", "\ud800", "\udfff", "\ufeff", "]]>", "<xml>", "&lol;", "𝕏" * 40, "‮evil", "'; DROP TABLE x; --"])
huge_text = st.integers(min_value=1_000, max_value=200_000).map(lambda n: "x" * n)
odd_numbers = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0, -1, 2**31, 2**63, 2**64 + 1, 10**30, -(10**30), 1.0, 1e308, 0.1])
scalars = st.none() | st.booleans() | odd_numbers | odd_text | huge_text

json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6)
                           | st.dictionaries(odd_text, inner, max_size=6), max_leaves=24)


def deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


deep_json = st.integers(min_value=50, max_value=20_000).flatmap(
    lambda n: st.sampled_from([deep(n), deep(n, '{"a":', "}").replace('{"a":}', '{"a":1}'), "[" * n]))


def dumps(value) -> bytes:
    """JSON as a hostile client would send it: lone surrogates escaped, NaN and Infinity as is."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def mutate(base: dict, path: tuple[str, ...], value) -> dict:
    """`base` with the field at `path` replaced by `value` (removed when value is ...)."""
    copy = json.loads(json.dumps(base))
    node = copy
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is ...:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return copy


def field_paths(value: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, inner in value.items():
        paths.append(prefix + (key,))
        if isinstance(inner, dict):
            paths += field_paths(inner, prefix + (key,))
    return paths


def mutations(base: dict) -> st.SearchStrategy[dict]:
    """A valid body with one field (at any depth) given a wrong value, or removed, or an extra one."""
    paths = field_paths(base)
    return st.one_of(
        st.tuples(st.sampled_from(paths), json_values | st.just(...)).map(lambda pv: mutate(base, *pv)),
        st.tuples(odd_text, json_values).map(lambda kv: {**base, kv[0]: kv[1]}),
    )


# -- the invariants --------------------------------------------------------------------------------

class _Tracebacks(logging.Handler):
    """Keeps every record that carries a traceback (Handler.handle already serializes emit)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


COUNTS: Counter[str] = Counter()


class Harness:
    """One per test: watches the log, fingerprints the database, counts the inputs."""

    def __init__(self, app, entry: str) -> None:
        self.app, self.entry = app, entry
        self.db = app.extensions["wx"].db
        self.watch = _Tracebacks()
        self.tables = [t.name for t in all_metadata().sorted_tables]

    def __enter__(self) -> Harness:
        logging.getLogger().addHandler(self.watch)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self.watch)
        _write_report()

    def fingerprint(self) -> tuple:
        """Row counts of every table, and the state of every order and refund."""
        counts = ", ".join(f"(SELECT count(*) FROM {name})" for name in self.tables)
        with self.db.unit_of_work() as session:
            sizes = tuple(session.execute(text(f"SELECT {counts}")).one())
            orders = tuple(session.execute(select(Order.out_trade_no, Order.state, Order.needs_reconcile,
                                                  Order.paid_at, Order.payer_openid).order_by(Order.id)))
            refunds = tuple(session.execute(select(Refund.out_refund_no, Refund.status).order_by(Refund.id)))
        return sizes, orders, refunds

    def check(self, send: Callable[[], object], label: str = "") -> int:
        """Send one input; assert the three invariants; return the status."""
        queue = self.app.extensions["wx"].queue
        if hasattr(queue, "wait_idle"):  # an earlier accepted input's jobs finish first
            queue.wait_idle(timeout=5)
        before = self.fingerprint()
        response = send()
        status = response.status_code
        COUNTS[self.entry] += 1
        assert status < 500, f"{self.entry}{label}: {status} {response.get_data(as_text=True)[:300]!r}"
        assert not self.watch.records, (
            f"{self.entry}{label}: logged a traceback: {self.watch.records[0].getMessage()}")
        if status >= 400:
            assert self.fingerprint() == before, f"{self.entry}{label}: refused ({status}) but changed the database"
        return status


def _write_report() -> None:
    path = os.environ.get("FUZZ_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(dict(COUNTS), fh)
