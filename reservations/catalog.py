"""The holdable goods of a counter: listed, their quantities edited, and imported from a CSV file
(columns counter_code, brand, product, variant, holdable). Flushes, never commits.

An import is all or nothing: every row is checked first, a bad row is reported with its line
number, and if any row is bad nothing of the file is applied. It is idempotent on (counter,
product, variant), the table's unique key: importing the same file twice changes nothing the
second time. `holdable` never goes below what shoppers hold right now: that is one guarded UPDATE
(`held <= new holdable`), not a read then a write, so a hold taken meanwhile is never stranded.

Staff changes are audited here, in the same transaction as the change: reservation.variant_quantity
(with `staff_id`, when the quantity moved) and reservation.variant_import (when a file created or
updated something; a CLI import is recorded as the CLI's).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from members import audit
from reservations import events
from reservations.exceptions import NotAllowed, UnknownReservation
from reservations.models import HoldableVariant
from wx_service.ground.extensions import db

COLUMNS = ("counter_code", "brand", "product", "variant", "holdable")
MAX_ROWS = 5000
MAX_HOLDABLE = 10_000
_COUNTER = re.compile(r"[\w\-]{1,32}")
_LIMITS = {"brand": 64, "product": 128, "variant": 64}


@dataclass
class ImportResult:
    """What an import did (`created`, `updated`, `unchanged` rows) or, with `errors`, why it did
    nothing: one line each, naming the file's line number."""

    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def applied(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Row:
    line: int
    counter_code: str
    brand: str
    product: str
    variant: str
    holdable: int


def _parse(csv_text: str, counters: frozenset[str] | None) -> tuple[list[_Row], list[str]]:
    """The file's rows, checked one by one; (rows, errors)."""
    reader = csv.reader(io.StringIO(csv_text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None:
        return [], ["the file is empty; its first line names the columns: " + ", ".join(COLUMNS)]
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        return [], [f"line 1: missing column(s) {', '.join(missing)}; the columns are {', '.join(COLUMNS)}"]
    where = {c: names.index(c) for c in COLUMNS}
    rows: list[_Row] = []
    errors: list[str] = []
    seen: dict[tuple[str, str, str], int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(rows) + len(errors) >= MAX_ROWS:
            errors.append(f"line {line}: more than {MAX_ROWS} rows; split the file")
            break
        value = {c: (cells[i].strip() if i < len(cells) else "") for c, i in where.items()}
        problems = []
        if not _COUNTER.fullmatch(value["counter_code"]):
            problems.append("counter_code is 1-32 letters, digits, '_' or '-'")
        elif counters is not None and value["counter_code"] not in counters:
            problems.append(f"counter {value['counter_code']} is not one of yours")
        for name, limit in _LIMITS.items():
            if not value[name] or len(value[name]) > limit:
                problems.append(f"{name} is 1-{limit} characters")
        try:
            holdable = int(value["holdable"])
            if not 0 <= holdable <= MAX_HOLDABLE:
                raise ValueError
        except ValueError:
            holdable = -1
            problems.append(f"holdable is a whole number from 0 to {MAX_HOLDABLE} (got {value['holdable']!r})")
        key = (value["counter_code"], value["product"], value["variant"])
        if not problems and key in seen:
            problems.append(f"the same counter, product and variant as line {seen[key]}")
        if problems:
            errors.append(f"line {line}: " + "; ".join(problems))
            continue
        seen[key] = line
        rows.append(_Row(line, value["counter_code"], value["brand"], value["product"], value["variant"], holdable))
    return rows, errors


def import_variants(csv_text: str, *, counters: frozenset[str] | None = None, staff_id: int | None = None,
                    cli: bool = False, detail: str = "") -> ImportResult:
    """Create or update the variants the CSV lists (with `counters`, only at those counters). All
    or nothing: any bad row, and the result carries the errors and nothing is changed. A file that
    changed something is audited as `staff_id`'s (or, with `cli`, the CLI's); `detail`: its name."""
    rows, errors = _parse(csv_text, counters)
    if errors:
        return ImportResult(errors=errors)
    if not rows:
        return ImportResult(errors=["the file has no rows below its header"])
    result = ImportResult()
    try:
        with db.session.begin_nested():
            for row in rows:
                _apply(row, result)
            if result.errors:
                raise _Undo
    except _Undo:
        return ImportResult(errors=result.errors)
    except IntegrityError:  # another import created one of these items meanwhile
        return ImportResult(errors=["another change to these items happened meanwhile; import the file again"])
    if (result.created or result.updated) and (staff_id is not None or cli):
        audit.record(staff_id, "reservation.variant_import", "variants:csv",
                     after={"created": result.created, "updated": result.updated, "unchanged": result.unchanged},
                     detail=(detail or (audit.CLI if staff_id is None else ""))[:200])
    return result


class _Undo(Exception):
    """Raised inside the import's savepoint to roll back every row of a file with a bad row."""


def _apply(row: _Row, result: ImportResult) -> None:
    found = db.session.scalar(select(HoldableVariant).where(
        HoldableVariant.counter_code == row.counter_code, HoldableVariant.product == row.product,
        HoldableVariant.variant == row.variant).execution_options(populate_existing=True))
    if found is None:
        db.session.add(HoldableVariant(counter_code=row.counter_code, brand=row.brand, product=row.product,
                                       variant=row.variant, holdable=row.holdable, held=0))
        db.session.flush()
        result.created += 1
    elif (found.brand, found.holdable) == (row.brand, row.holdable):
        result.unchanged += 1
        return
    elif _set(found.id, holdable=row.holdable, brand=row.brand):
        result.updated += 1
    else:
        held = db.session.get(HoldableVariant, found.id, populate_existing=True).held
        result.errors.append(f"line {row.line}: {held} unit(s) of {row.product} {row.variant} are held now; "
                             "holdable cannot go below that")
        return
    events.counter_changed(row.counter_code, "variant")


def _set(variant_id: int, **values: object) -> bool:
    """One guarded UPDATE: the new holdable only if it is not below what is held now."""
    return bool(db.session.execute(update(HoldableVariant).where(
        HoldableVariant.id == variant_id, HoldableVariant.held <= values["holdable"]).values(**values)).rowcount)


def set_holdable(variant_id: int, holdable: int, *, counters: frozenset[str] | None = None,
                 staff_id: int | None = None) -> HoldableVariant:
    """Staff change how many of a variant may be held. UnknownReservation for a variant not at
    the staff member's counters; NotAllowed below what is held now. A change of the quantity is
    audited with `staff_id` (the row is locked, so `before` is what the update replaced)."""
    variant = db.session.get(HoldableVariant, variant_id, populate_existing=True, with_for_update=True)
    if variant is None or (counters is not None and variant.counter_code not in counters):
        raise UnknownReservation(f"no holdable item {variant_id}")
    if not isinstance(holdable, int) or isinstance(holdable, bool) or not 0 <= holdable <= MAX_HOLDABLE:
        raise NotAllowed(f"holdable is a whole number from 0 to {MAX_HOLDABLE}")
    before = variant.holdable
    if not _set(variant_id, holdable=holdable):
        held = db.session.get(HoldableVariant, variant_id, populate_existing=True).held
        raise NotAllowed(f"{held} unit(s) are held now; holdable cannot go below that")
    events.counter_changed(variant.counter_code, "variant")
    changed = db.session.get(HoldableVariant, variant_id, populate_existing=True)
    if staff_id is not None and changed.holdable != before:
        audit.record(staff_id, "reservation.variant_quantity", f"variant:{variant_id}", before={"holdable": before},
                     after={"holdable": changed.holdable},
                     detail=f"{changed.counter_code} {changed.brand} {changed.product} {changed.variant}".strip())
    return changed


def variants_of(counter_code: str) -> list[HoldableVariant]:
    return list(db.session.scalars(select(HoldableVariant).where(HoldableVariant.counter_code == counter_code)
                                   .order_by(HoldableVariant.brand, HoldableVariant.product, HoldableVariant.variant)))
