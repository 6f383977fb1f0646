"""Brand news in the console (/console/announcements, issue 12): every announcement with its
progress (chunks done of total, deliveries by outcome, started and finished), refreshed every few
seconds from /console/announcements/progress; and a form that announces a new arrival or an
activity by id (for the demo and tests; the content pages announce on publish).

Marketing and analysts read; only marketing (and admins) announce, audited as
`announcement.create`."""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, render_template, request

from marketing import announcements
from marketing.models import ANNOUNCEMENT_KINDS
from members import audit
from members.staff import ANALYST, MARKETING
from wx_service.edges.console.auth import roles
from wx_service.ground.extensions import db

bp = Blueprint("console_announcements", __name__, url_prefix="/console/announcements", template_folder="templates")


def _rows() -> list[dict]:
    return [announcements.progress_json(a) for a in announcements.recent()]


@bp.get("")
@roles(MARKETING, ANALYST)
def index() -> str:
    with db.unit_of_work():
        rows = _rows()
    return render_template("console/announcements.html", rows=rows, outcomes=announcements.OUTCOMES,
                           kinds=ANNOUNCEMENT_KINDS)


@bp.get("/progress")
@roles(MARKETING, ANALYST)
def progress() -> Response:
    """What the page redraws from."""
    with db.unit_of_work():
        return jsonify(announcements=_rows())


@bp.post("")
@roles(MARKETING)
def create() -> tuple[Response, int]:
    """Announce an item: {kind, item_id}. 201 with the announcement; 409 when it was announced."""
    body = request.get_json(silent=True) or {}
    kind, item_id = body.get("kind"), body.get("item_id")
    if kind not in ANNOUNCEMENT_KINDS or not isinstance(item_id, int) or isinstance(item_id, bool) \
            or not 1 <= item_id <= 2**31 - 1:
        return jsonify(error=f"kind is one of {', '.join(ANNOUNCEMENT_KINDS)} and item_id a positive integer"), 400
    with db.unit_of_work():
        try:
            made = announcements.announce(kind, item_id)
        except announcements.UnknownItem as exc:
            return jsonify(error=str(exc)), 404
        if made is None:
            return jsonify(error=f"{kind} {item_id} was announced already"), 409
        audit.record(g.staff.id, "announcement.create", f"announcement:{made.id}",
                     after={"kind": kind, "item_id": item_id, "subscribers": made.subscribers}, detail=made.title)
        shown = announcements.progress_json(made)
    return jsonify(shown), 201
