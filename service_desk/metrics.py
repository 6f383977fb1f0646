"""STUB (deskui branch): the desk's daily figures and the SVG chart, minimal. The read-side
branch's version replaces this file at merge; names agreed."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from statistics import median
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import select

from members.models import Staff
from service_desk.models import Agent, Conversation
from wx_service.ground.extensions import db

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class DayMetrics:
    day: date
    opened: int
    resolved: int
    first_response_avg_s: float | None
    first_response_p50_s: float | None
    resolution_avg_s: float | None
    csat_avg: float | None
    csat_count: int

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "day": self.day.isoformat()}


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(), SHANGHAI).astimezone(timezone.utc),
            datetime.combine(end + timedelta(days=1), time(), SHANGHAI).astimezone(timezone.utc))


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _local_day(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()


def daily(start: date, end: date) -> list[DayMetrics]:
    lo, hi = _bounds(start, end)
    rows = db.session.scalars(select(Conversation).where(Conversation.created_at >= lo, Conversation.created_at < hi)).all()
    out = []
    day = start
    while day <= end:
        today = [c for c in rows if _local_day(c.created_at) == day]
        firsts = [(c.first_response_at - (c.queued_at or c.created_at)).total_seconds()
                  for c in today if c.first_response_at]
        resolved = [c for c in today if c.resolved_at]
        rated = [c.csat for c in today if c.csat]
        out.append(DayMetrics(day, len(today), len(resolved), _avg(firsts), median(firsts) if firsts else None,
                              _avg([(c.resolved_at - c.created_at).total_seconds() for c in resolved]),
                              _avg(rated), len(rated)))
        day += timedelta(days=1)
    return out


def per_agent(start: date, end: date) -> list[dict[str, object]]:
    lo, hi = _bounds(start, end)
    rows = db.session.execute(select(Conversation, Staff.name).join(Agent, Agent.id == Conversation.assignee_id)
                              .join(Staff, Staff.id == Agent.staff_id)
                              .where(Conversation.created_at >= lo, Conversation.created_at < hi)).all()
    by: dict[str, list[Conversation]] = {}
    for c, name in rows:
        by.setdefault(name, []).append(c)
    return [{"agent": name, "handled": len(cs), "resolved": sum(1 for c in cs if c.resolved_at),
             "csat_avg": _avg([c.csat for c in cs if c.csat])} for name, cs in sorted(by.items())]


def chart_svg(days: list[DayMetrics]) -> str:
    """Opened and resolved per day as bars, inline SVG (no script, no CDN)."""
    width, height, pad = 640, 200, 24
    top = max([1] + [max(d.opened, d.resolved) for d in days])
    step = (width - 2 * pad) / max(1, len(days))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="desk-chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="conversations per day">']
    for i, d in enumerate(days):
        x = pad + i * step
        for j, (value, colour) in enumerate(((d.opened, "#07c160"), (d.resolved, "#1677ff"))):
            h = (height - 2 * pad) * value / top
            parts.append(f'<rect x="{x + j * step / 2.5:.1f}" y="{height - pad - h:.1f}" width="{step / 2.8:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(d.day.isoformat())}: {value}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
