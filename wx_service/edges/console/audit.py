"""The audit log page (/console/audit): every staff write, newest first, searchable by staff
username, action prefix, subject and a range of store days (Asia/Shanghai), and the same search
exported as CSV (?format=csv, streamed, safe to open in a spreadsheet: see members.audit.safe_cell).

Admins only (the route declares `roles(ADMIN)`; admins pass every role check, so it names no other).
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, render_template, request, stream_with_context

from members import audit
from members.staff import ADMIN
from wx_service.edges.console.auth import roles
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

bp = Blueprint("console_audit", __name__, url_prefix="/console/audit", template_folder="templates")

PAGE_SIZE = 50
def _day(name: str, errors: list[str]) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{name} is a date, YYYY-MM-DD (got {raw[:20]!r})")
        return None


def _filters() -> tuple[audit.Filters, list[str]]:
    errors: list[str] = []
    filters = audit.Filters(staff=(request.args.get("staff") or "").strip()[:64],
                            action=(request.args.get("action") or "").strip()[:48],
                            subject=(request.args.get("subject") or "").strip()[:96],
                            since=_day("since", errors), until=_day("until", errors))
    return filters, errors


@bp.get("")
@roles(ADMIN)
def index():
    filters, errors = _filters()
    if errors:
        abort(Response(render_template("console/audit_forbidden.html", reason="; ".join(errors)), 400))
    if request.args.get("format") == "csv":
        return _csv(filters)
    try:
        number = max(1, int(request.args.get("page") or 1))
    except ValueError:
        number = 1
    with db.unit_of_work():
        rows, more = audit.page(filters, number, PAGE_SIZE)
        shown = [{"id": r.entry.id, "at": audit.local_time(r.entry.at), "who": r.who, "action": r.entry.action,
                  "subject": r.entry.subject, "before": audit.json_text(r.entry.before),
                  "after": audit.json_text(r.entry.after), "detail": r.entry.detail} for r in rows]
    args = {k: v for k, v in request.args.items() if k not in ("page", "format")}
    return render_template("console/audit.html", rows=shown, filters=filters, page=number, more=more, args=args)


def _csv(filters: audit.Filters) -> Response:
    def body():
        with db.unit_of_work():
            yield from audit.csv_lines(audit.iter_rows(filters))

    stamp = audit.local_time(utcnow())[:10]  # the store's day
    return Response(stream_with_context(body()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
                             "Cache-Control": "no-store"})
