"""What shoppers can book and hold: `flask --app wsgi reservations ...`.

    reservations service-add facial "肌肤测试" LANCOME --duration 30 --buffer 10 --lead 60 --horizon 30
    reservations resource-add facial "1号美容台" --kind station --capacity 1
    reservations hours-set LANCOME "Mon-Fri 10:00-22:00; Sat,Sun 10:00-23:00"
    reservations exception-add '*' 2026-12-25 closed "圣诞节"
    reservations exception-add LANCOME 2026-12-04 10:00-23:00 "周五夜场"
    reservations variants-import goods.csv     (counter_code,brand,product,variant,holdable)
    reservations list

Each command is one unit of work; a refusal exits non-zero with the reason.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click
from flask import Flask

from reservations import setup
from reservations.exceptions import ReservationError
from reservations.slots import store_day
from wx_service.ground.db import utcnow

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _weekdays_line(week: dict[int, tuple[int, int]]) -> str:
    if not week:
        return "no usual hours (closed unless an exception opens a day)"
    return ", ".join(f"{name} {setup.hhmm(week[d][0])}-{setup.hhmm(week[d][1])}" if d in week else f"{name} closed"
                     for d, name in enumerate(_WEEKDAY_NAMES))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.ClickException(f"{text!r} is not a day (YYYY-MM-DD)") from None


def register(app: Flask) -> None:
    @contextmanager
    def unit_of_work() -> Iterator[None]:
        """One transaction; a rule's refusal becomes the command's error message."""
        try:
            with app.extensions["wx"].db.unit_of_work():
                yield
        except ReservationError as exc:
            raise click.ClickException(str(exc)) from exc

    @app.cli.group("reservations")
    def reservations_group() -> None:
        """Services, resources, opening hours and holdable goods."""

    @reservations_group.command("service-add")
    @click.argument("code")
    @click.argument("name")
    @click.argument("counter")
    @click.option("--duration", type=int, required=True, help="Minutes the service takes.")
    @click.option("--buffer", type=int, default=0, show_default=True, help="Minutes kept free after each one.")
    @click.option("--lead", type=int, default=60, show_default=True, help="Book at least this many minutes ahead.")
    @click.option("--horizon", type=int, default=30, show_default=True,
                  help="Book up to the end of the store day this many days ahead.")
    @click.option("--description", default="", help="A line shoppers see under the name.")
    def service_add(code: str, name: str, counter: str, duration: int, buffer: int, lead: int, horizon: int,
                    description: str) -> None:
        """Add a service at a counter (or change the one with this code)."""
        with unit_of_work():
            service, new = setup.define_service(code, name, counter, duration, buffer, lead, horizon, description)
            click.echo(f"{'added' if new else 'updated'} service {service.code} ({service.name}) at {counter}: "
                       f"{duration} min + {buffer} min buffer, book {lead} min to {horizon} days ahead")

    @reservations_group.command("resource-add")
    @click.argument("service_code")
    @click.argument("name")
    @click.option("--kind", type=click.Choice(setup.RESOURCE_KINDS), default="staff", show_default=True)
    @click.option("--capacity", type=int, default=1, show_default=True, help="Shoppers served at once.")
    def resource_add(service_code: str, name: str, kind: str, capacity: int) -> None:
        """Add who or what serves a service (or change the one of that name)."""
        with unit_of_work():
            resource, new = setup.define_resource(service_code, name, kind, capacity)
            click.echo(f"{'added' if new else 'updated'} {kind} {resource.name} (id {resource.id}) for "
                       f"{service_code}, {capacity} at once")

    @reservations_group.command("hours-set")
    @click.argument("counter")
    @click.argument("spec")
    def hours_set(counter: str, spec: str) -> None:
        """Set a counter's usual hours, e.g. "Mon-Fri 10:00-22:00; Sat,Sun 10:00-23:00; Tue closed"."""
        with unit_of_work():
            setup.set_hours(counter, spec)
            click.echo(f"{counter}: {_weekdays_line(setup.week_of(counter))}")

    @reservations_group.command("exception-add")
    @click.argument("counter")
    @click.argument("day")
    @click.argument("span")
    @click.argument("note", required=False, default="")
    def exception_add(counter: str, day: str, span: str, note: str) -> None:
        """One day that differs: COUNTER (or * for the whole store), YYYY-MM-DD, closed or HH:MM-HH:MM."""
        on = _day(day)
        with unit_of_work():
            row, new = setup.set_exception(counter, on, span, note)
            what = "closed" if row.opens is None else f"open {setup.hhmm(row.opens)}-{setup.hhmm(row.closes)}"
            where = "every counter" if counter == "*" else counter
            click.echo(f"{'added' if new else 'updated'}: {on.isoformat()} {where} {what}"
                       + (f" ({row.note})" if row.note else ""))

    @reservations_group.command("variants-import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def variants_import(file: Path) -> None:
        """Holdable goods from a CSV with the header counter_code,brand,product,variant,holdable:
        new rows are added, known ones (counter, product, variant) updated. A bad row is reported
        with its line and then nothing of the file is imported."""
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise click.ClickException(f"{file} is not UTF-8 text; save the sheet as CSV UTF-8") from None
        import_variants: Callable = importlib.import_module("reservations.catalog").import_variants
        with unit_of_work():
            result = import_variants(text, cli=True, detail=file.name)
        for error in result.errors:
            click.echo(f"  {error}", err=True)
        if result.errors:
            raise click.ClickException(f"nothing imported: {len(result.errors)} row(s) to fix first")
        click.echo(f"{result.created} added, {result.updated} updated, {getattr(result, 'unchanged', 0)} unchanged")

    @reservations_group.command("list")
    def list_all() -> None:
        """Every counter: its services and resources, its week, its exception days from today."""
        with unit_of_work():
            counters = setup.catalogue(store_day(utcnow()))
            if not counters:
                click.echo("nothing defined yet: start with reservations service-add")
            for entry in counters:
                click.echo(entry.counter if entry.counter != "*" else "* (every counter)")
                if entry.counter != "*":
                    click.echo(f"    hours: {_weekdays_line(entry.week)}")
                for service, resources in entry.services:
                    state = "" if service.active else " [inactive]"
                    click.echo(f"    {service.code:<12} {service.name} (id {service.id}){state}: "
                               f"{service.duration_minutes}+{service.buffer_minutes} min, "
                               f"lead {service.lead_minutes} min, horizon {service.horizon_days} days")
                    for r in resources:
                        click.echo(f"        {r.kind:<8} {r.name} (id {r.id}) x{r.capacity}"
                                   + ("" if r.active else " [inactive]"))
                for row in entry.exceptions:
                    what = "closed" if row.opens is None else f"{setup.hhmm(row.opens)}-{setup.hhmm(row.closes)}"
                    click.echo(f"    {row.day.isoformat()}: {what}" + (f" ({row.note})" if row.note else ""))
