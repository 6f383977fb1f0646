"""The O2O funnel page (/console/funnel): scans → follows → members → visits → paying members →
sales per campaign (QR scene) or per brand, for a range of store days, in the last-touch or the
first-touch view (marketing.funnel states the rule), as a table with conversion rates, a funnel
chart (SVG drawn here, no chart library) and the same table as CSV (?format=csv).

Read only: analysts and marketing staff (and admins) may open it; nothing here writes, so nothing
is audited.
"""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from marketing import funnel
from members.audit import local_time
from members.staff import ANALYST, MARKETING
from wx_service.edges.console.auth import roles
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

bp = Blueprint("console_funnel", __name__, url_prefix="/console/funnel", template_folder="templates")

DEFAULT_DAYS = 28
MAX_DAYS = 366


def _form() -> tuple[date, date, str, str, list[str]]:
    """The form's values (defaults: the last 28 store days, last-touch, by campaign) and what was wrong."""
    errors: list[str] = []
    today = date.fromisoformat(local_time(utcnow())[:10])

    def day(name: str, default: date) -> date:
        raw = (request.args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors.append(f"{name} is a date, YYYY-MM-DD (got {raw[:20]!r})")
            return default

    until = day("until", today)
    since = day("since", until - timedelta(days=DEFAULT_DAYS - 1))
    if until < since:
        errors.append("the range ends before it starts")
    elif (until - since).days >= MAX_DAYS:
        errors.append(f"a range is at most {MAX_DAYS} days")
    view = request.args.get("view") or "last"
    if view not in funnel.VIEWS:
        errors.append(f"view is one of {', '.join(funnel.VIEWS)}")
    grouping = request.args.get("grouping") or "campaign"
    if grouping not in funnel.GROUPINGS:
        errors.append(f"grouping is one of {', '.join(funnel.GROUPINGS)}")
    return since, until, view, grouping, errors


@bp.get("")
@roles(ANALYST, MARKETING)
def index():
    since, until, view, grouping, errors = _form()
    form = {"since": since.isoformat(), "until": until.isoformat(), "view": view, "grouping": grouping}
    if errors:
        return render_template("console/funnel.html", form=form, errors=errors, result=None,
                               days=funnel.attribution_days()), 400
    with db.unit_of_work():
        result = funnel.report(since, until, view=view, grouping=grouping)
    if request.args.get("format") == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(funnel.csv_rows(result))
        name = f"funnel-{grouping}-{view}-{since.isoformat()}-{until.isoformat()}.csv"
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    return render_template("console/funnel.html", form=form, errors=[], result=result, days=result.days,
                           chart=Markup(funnel.funnel_svg(result.total)), yuan=funnel.yuan, rate=funnel.rate_text)
