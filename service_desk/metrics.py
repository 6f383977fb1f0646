"""How the desk is doing, per store day (Asia/Shanghai): conversations opened and resolved, how
long shoppers waited for a person's first answer, how long until resolved, and their ratings.

The range's conversations are read in one query and counted in Python, so the same code gives the
same figures on SQLite and Postgres (no date functions, which differ between them). Which day a
figure belongs to:

- opened: the day the conversation started (including those the FAQ alone answered);
- first response: the day it was queued for a person, if a person answered (first_response_at −
  queued_at);
- resolved, resolution time (resolved_at − queued_at) and the rating: the day it was resolved.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from members.models import Staff
from service_desk.models import Agent, Conversation
from wx_service.ground.extensions import db

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 366


@dataclass
class DayMetrics:
    """One store day's figures; averages are None on a day with nothing to average."""

    day: date
    opened: int = 0
    resolved: int = 0
    first_response_avg_s: float | None = None
    first_response_p50_s: float | None = None
    resolution_avg_s: float | None = None
    csat_avg: float | None = None
    csat_count: int = 0

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        return out


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValueError("the range ends before it starts")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"a range is at most {MAX_DAYS} days")
    lower = datetime.combine(start, time(0), SHANGHAI).astimezone(timezone.utc)
    upper = datetime.combine(end + timedelta(days=1), time(0), SHANGHAI).astimezone(timezone.utc)
    return lower, upper


def _day(value: datetime) -> date:
    return value.astimezone(SHANGHAI).date()


def _within(column, lower: datetime, upper: datetime):
    return and_(column >= lower, column < upper)


def _rows(lower: datetime, upper: datetime) -> list[Conversation]:
    return list(db.session.scalars(select(Conversation).where(or_(
        _within(Conversation.created_at, lower, upper), _within(Conversation.queued_at, lower, upper),
        _within(Conversation.resolved_at, lower, upper)))))


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def daily(start: date, end: date) -> list[DayMetrics]:
    """Every day from `start` to `end` inclusive (store days), zeros where nothing happened.
    ValueError for a reversed range or one over a year."""
    lower, upper = _bounds(start, end)
    days = {start + timedelta(days=n): DayMetrics(start + timedelta(days=n)) for n in range((end - start).days + 1)}
    first: dict[date, list[float]] = defaultdict(list)
    resolution: dict[date, list[float]] = defaultdict(list)
    ratings: dict[date, list[int]] = defaultdict(list)
    for c in _rows(lower, upper):
        if lower <= c.created_at < upper:
            days[_day(c.created_at)].opened += 1
        if c.queued_at is not None and lower <= c.queued_at < upper:
            waited = _seconds(c.first_response_at, c.queued_at)
            if waited is not None:
                first[_day(c.queued_at)].append(waited)
        if c.resolved_at is not None and lower <= c.resolved_at < upper:
            day = _day(c.resolved_at)
            days[day].resolved += 1
            took = _seconds(c.resolved_at, c.queued_at)
            if took is not None:
                resolution[day].append(took)
            if c.csat is not None:
                ratings[day].append(c.csat)
    for day, figures in days.items():
        figures.first_response_avg_s = _avg(first[day])
        figures.first_response_p50_s = round(float(statistics.median(first[day])), 1) if first[day] else None
        figures.resolution_avg_s = _avg(resolution[day])
        figures.csat_avg = round(sum(ratings[day]) / len(ratings[day]), 2) if ratings[day] else None
        figures.csat_count = len(ratings[day])
    return [days[day] for day in sorted(days)]


def per_agent(start: date, end: date) -> list[dict[str, object]]:
    """Per agent, over the conversations they resolved in the range: how many, their average
    first response, their ratings. Agents who resolved nothing are left out; most resolved first.
    Keys: agent_id, agent_name, resolved, first_response_avg_s, csat_avg, csat_count."""
    lower, upper = _bounds(start, end)
    rows = db.session.execute(
        select(Conversation.assignee_id, Conversation.queued_at, Conversation.first_response_at, Conversation.csat,
               Staff.name)
        .join(Agent, Agent.id == Conversation.assignee_id).join(Staff, Staff.id == Agent.staff_id)
        .where(_within(Conversation.resolved_at, lower, upper))).all()
    by_agent: dict[int, dict] = {}
    for agent_id, queued_at, first_response_at, csat, name in rows:
        figures = by_agent.setdefault(agent_id, {"name": name, "resolved": 0, "first": [], "csat": []})
        figures["resolved"] += 1
        waited = _seconds(first_response_at, queued_at)
        if waited is not None:
            figures["first"].append(waited)
        if csat is not None:
            figures["csat"].append(csat)
    out = [{"agent_id": agent_id, "agent_name": f["name"], "resolved": f["resolved"],
            "first_response_avg_s": _avg(f["first"]),
            "csat_avg": round(sum(f["csat"]) / len(f["csat"]), 2) if f["csat"] else None,
            "csat_count": len(f["csat"])} for agent_id, f in by_agent.items()]
    return sorted(out, key=lambda a: (-a["resolved"], a["agent_name"], a["agent_id"]))


# -- the chart -------------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 48, 24, 40
OPENED_COLOUR, RESOLVED_COLOUR, LINE_COLOUR = "#7aa6d8", "#3d7a4a", "#d9822b"


def _text(x: float, y: float, content: str, *, anchor: str = "middle", size: int = 10, colour: str = "#444") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{colour}">{escape(content)}</text>')


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def chart_svg(days: list[DayMetrics]) -> str:
    """The metrics page's chart as one self-contained SVG: per day a bar of conversations opened
    and one of resolved (left axis), and the average first-response minutes as a line with dots
    (right axis). No scripts, no external references, every text escaped: safe to inline."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="Conversations opened and resolved per day, and average first response" '
            f'font-family="sans-serif">')
    parts = [head, f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>']
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    if not days:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "no data"))
        parts.append("</svg>")
        return "".join(parts)
    count_max = _nice_ceiling(max(max(d.opened, d.resolved) for d in days))
    minutes = [None if d.first_response_avg_s is None else d.first_response_avg_s / 60 for d in days]
    minutes_max = _nice_ceiling(max((m for m in minutes if m is not None), default=0))
    slot = plot_w / len(days)
    bar_w = max(1.0, min(18.0, slot * 0.36))
    # axes and their labels
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + plot_w}" y2="{base}" stroke="#999"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#999"/>')
    parts.append(f'<line x1="{LEFT + plot_w}" y1="{TOP}" x2="{LEFT + plot_w}" y2="{base}" stroke="#999"/>')
    parts.append(_text(LEFT - 6, TOP + 4, f"{count_max:g}", anchor="end"))
    parts.append(_text(LEFT - 6, base, "0", anchor="end"))
    parts.append(_text(LEFT + plot_w + 6, TOP + 4, f"{minutes_max:g} min", anchor="start", colour=LINE_COLOUR))
    parts.append(_text(LEFT + plot_w + 6, base, "0", anchor="start", colour=LINE_COLOUR))
    label_every = max(1, -(-len(days) // 12))  # at most about a dozen day labels
    points: list[tuple[float, float, DayMetrics, float]] = []
    for n, d in enumerate(days):
        centre = LEFT + slot * (n + 0.5)
        for offset, value, colour, css, what in ((-bar_w, d.opened, OPENED_COLOUR, "bar-opened", "opened"),
                                                 (0.0, d.resolved, RESOLVED_COLOUR, "bar-resolved", "resolved")):
            h = plot_h * value / count_max
            parts.append(f'<rect class="{css}" x="{centre + offset:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{escape(f"{d.day.isoformat()}: {value} {what}")}'
                         f'</title></rect>')
        if n % label_every == 0:
            parts.append(_text(centre, base + 14, d.day.strftime("%m-%d")))
        if minutes[n] is not None:
            points.append((centre, base - plot_h * minutes[n] / minutes_max, d, minutes[n]))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _d, _m in points)
        parts.append(f'<polyline class="line-first-response" points={quoteattr(path)} fill="none" '
                     f'stroke="{LINE_COLOUR}" stroke-width="2"/>')
    for x, y, d, m in points:
        parts.append(f'<circle class="dot-first-response" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE_COLOUR}">'
                     f'<title>{escape(f"{d.day.isoformat()}: first response {m:.1f} min on average")}</title></circle>')
    legend_y = HEIGHT - 8
    for x, colour, label in ((LEFT, OPENED_COLOUR, "opened"), (LEFT + 90, RESOLVED_COLOUR, "resolved"),
                             (LEFT + 190, LINE_COLOUR, "avg first response (min)")):
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, legend_y, label, anchor="start"))
    parts.append("</svg>")
    return "".join(parts)
