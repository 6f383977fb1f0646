"""The O2O funnel report: scans → follows → members → visits → paying members → sales, per campaign
(QR scene / campaign key) or per brand, for a range of store days (Asia/Shanghai, both ends
included), in two views. Read only: it reads the touches table (and members' identity tables).

The rule, as the console and README state it:

- Who: a touch names a member or, before there is one, an openid. An openid that belongs to a
  member (member_identities, OA or mini-program) counts as that member, so the touches from before
  they joined are theirs; a merged member counts as the member they were merged into. An openid
  with no member stays a shopper of its own.
- Scans and follows are counted where they happened: distinct shoppers who scanned (followed)
  with the campaign's scene (or, grouped by brand, a brand's counter code as scene) in the range.
- Members, visits, paying members and sales are credited by the view:
  - last-touch: to the shopper's last touch carrying a campaign (brand) at or before the event
    and at most N days before it (FUNNEL_ATTRIBUTION_DAYS, default 7). None in the window: the
    event is unattributed (the "—" row).
  - first-touch: to the shopper's first touch carrying a campaign (brand) ever, with no window:
    first-touch answers "what brought this shopper in", however long ago. A first touch after
    the event does not count (the event is unattributed).
  A touch "carries a campaign" (brand) whatever its kind, the event itself included: a payment
  whose order came from a campaign (Order.source is one of our QR scenes) is its own last touch;
  by brand, a payment at a brand's counter is its own last touch, and in the first-touch view it
  goes to the shopper's first brand touch, which may be another brand's counter.
- members: distinct shoppers with a "member" touch (card claimed) in the range;
  visits: distinct shoppers with a reservation check-in, or a payment at a counter (not the
  mini-program, "mp", nor online, ""), in the range;
  paying members: distinct members (shoppers resolved to a member) with a payment in the range;
  sales: the payments' amounts in fen, less every refund of those payments recorded so far
  (whenever refunded: a refund takes back the sale it belongs to, so a past range can shrink).
- Conversion: each stage over the one before (members over follows, …, paying over visits), and
  overall paying members over scans; None when the stage before is 0.

Computed in SQL: one statement per view and grouping, one window pass over each shopper's
touches (Postgres and SQLite; bench/funnel.py times it on a million touches).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, text

from marketing.models import Brand, QrCode
from members.audit import safe_cell
from wx_service.ground.db import UTCDateTime
from wx_service.ground.extensions import db, settings

STORE_ZONE = ZoneInfo("Asia/Shanghai")
VIEWS = ("last", "first")
GROUPINGS = ("campaign", "brand")
STAGES = ("scans", "follows", "members", "visits", "paying", "sales_fen")
STAGE_LABELS = {"scans": "扫码 scans", "follows": "关注 follows", "members": "会员 members",
                "visits": "到店 visits", "paying": "付款会员 paying members", "sales_fen": "销售额 sales"}
ALL = "*"  # the key of the totals row


def attribution_days() -> int:
    return int(settings().FUNNEL_ATTRIBUTION_DAYS)


def day_start(day: date) -> datetime:
    """The UTC instant a store day begins."""
    return datetime.combine(day, time(0), STORE_ZONE).astimezone(ZoneInfo("UTC"))


@dataclass
class Row:
    key: str  # a campaign, a brand id as text, "" for unattributed, ALL for the totals
    label: str = ""
    scans: int = 0
    follows: int = 0
    members: int = 0
    visits: int = 0
    paying: int = 0
    sales_fen: int = 0

    def stages(self) -> list[int]:
        return [getattr(self, s) for s in STAGES]

    def rates(self) -> dict[str, float | None]:
        """Each stage over the one before, and paying over scans ("overall"), as percentages."""
        def pct(a: int, b: int) -> float | None:
            return round(100.0 * a / b, 1) if b else None
        return {"follows": pct(self.follows, self.scans), "members": pct(self.members, self.follows),
                "visits": pct(self.visits, self.members), "paying": pct(self.paying, self.visits),
                "overall": pct(self.paying, self.scans)}


@dataclass
class Report:
    since: date
    until: date
    view: str
    grouping: str
    days: int
    rows: list[Row] = field(default_factory=list)
    total: Row = field(default_factory=lambda: Row(ALL, "合计 total"))


_DOWN = """0, 0,
  COUNT(DISTINCT CASE WHEN kind = 'member' THEN shopper END),
  COUNT(DISTINCT CASE WHEN kind = 'check_in' OR (kind = 'payment' AND counter NOT IN ('', 'mp')) THEN shopper END),
  COUNT(DISTINCT CASE WHEN kind = 'payment' AND member IS NOT NULL THEN shopper END),
  COALESCE(SUM(fen), 0)"""
_UP = """COUNT(DISTINCT CASE WHEN kind = 'scan' THEN shopper END),
  COUNT(DISTINCT CASE WHEN kind = 'follow' THEN shopper END), 0, 0, 0, 0"""


def _sql(dialect: str, view: str, grouping: str) -> str:
    """One statement. Each shopper's touches are read once in time order (one window pass, no
    self-join): at every member, check-in or payment the window gives the time of the last touch
    with a campaign (brand) so far and a `tag` of it, "time id campaign", whose largest value is
    the last such touch and whose smallest is the first (the time and id make it sort in time)."""
    dim = "NULLIF(t.campaign, '')" if grouping == "campaign" else "CAST(t.brand_id AS VARCHAR(16))"
    if dialect == "postgresql":
        # Keys compared byte by byte ("C"): the sorts behind the window and the distinct counts
        # are several times faster than in the database's locale, and their order is not shown.
        collate = ' COLLATE "C"'
        # A shopper is a number: the member's id, or for an openid with no member a 64-bit hash
        # of it made negative (a collision would need ~4 billion openids to be likely).
        shopper = "COALESCE(m.merged_into_id, m.id, -abs(hashtextextended(t.openid, 0)))"
        stamp = "to_char(t.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || lpad(CAST(t.id AS TEXT), 12, '0')"
        window_start = "w.occurred_at - make_interval(days => :days)"
    else:  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); datetime() drops the fraction, which sorts lower
        collate = ""
        shopper = ("(CASE WHEN m.id IS NOT NULL THEN 'm' || CAST(COALESCE(m.merged_into_id, m.id) AS VARCHAR(16)) "
                   "ELSE 'o' || t.openid END)")
        stamp = "t.occurred_at || substr('000000000000' || t.id, -12, 12)"
        window_start = "datetime(w.occurred_at, '-' || :days || ' days')"
    if view == "last":
        tag = "MAX(tag) OVER (PARTITION BY shopper ORDER BY occurred_at)"
        credit = f"CASE WHEN w.last_at >= {window_start} THEN substr(w.tag, 39) END"
    else:
        tag = "MIN(tag) OVER (PARTITION BY shopper ORDER BY occurred_at)"
        credit = "substr(w.tag, 39)"
    lower = "" if view == "first" else "AND t.occurred_at >= :start_window"
    return f"""
WITH ident AS (
    SELECT openid, MIN(member_id) AS member_id FROM member_identities GROUP BY openid
  ),
  t AS (
    SELECT t.id, t.kind, t.occurred_at, t.amount_fen, t.counter, t.key, ({dim}){collate} AS dim,
           CASE WHEN {dim} IS NOT NULL THEN ({stamp} || {dim}){collate} END AS tag,
           COALESCE(m.merged_into_id, m.id) AS member,
           {shopper} AS shopper
    FROM touches t
    LEFT JOIN ident i ON t.member_id IS NULL AND i.openid = t.openid
    LEFT JOIN members m ON m.id = COALESCE(t.member_id, i.member_id)
    WHERE t.occurred_at < :end AND t.kind <> 'refund' {lower}
  ),
  w AS (
    SELECT id, kind, occurred_at, amount_fen, counter, key, member, shopper,
           MAX(CASE WHEN dim IS NOT NULL THEN occurred_at END) OVER (PARTITION BY shopper ORDER BY occurred_at) AS last_at,
           {tag} AS tag
    FROM t WHERE dim IS NOT NULL OR (occurred_at >= :start AND kind IN ('member', 'check_in', 'payment'))
  ),
  credited AS (
    SELECT w.kind, w.key, w.amount_fen, w.counter, w.member, w.shopper, {credit} AS credit
    FROM w WHERE w.occurred_at >= :start AND w.kind IN ('member', 'check_in', 'payment')
  ),
  refunded AS (
    SELECT ref, SUM(amount_fen) AS fen FROM touches WHERE kind = 'refund' AND ref <> '' GROUP BY ref
  ),
  paid AS (
    SELECT c.credit, c.kind, c.shopper, c.counter, c.member,
           CASE WHEN c.kind = 'payment' THEN c.amount_fen - COALESCE(r.fen, 0) ELSE 0 END AS fen
    FROM credited c LEFT JOIN refunded r ON c.kind = 'payment' AND r.ref = c.key
  ),
  up AS (
    SELECT dim, kind, shopper FROM t WHERE occurred_at >= :start AND kind IN ('scan', 'follow') AND dim IS NOT NULL
  )
SELECT 'd' AS part, credit AS k, {_DOWN} FROM paid GROUP BY credit
UNION ALL
SELECT 't', NULL, {_DOWN} FROM paid
UNION ALL
SELECT 'u', dim, {_UP} FROM up GROUP BY dim
UNION ALL
SELECT 'v', NULL, {_UP} FROM up
"""


def _labels(grouping: str, keys: list[str]) -> dict[str, str]:
    """Campaign keys are shown with their QR code's name, brands by name."""
    if grouping == "campaign":
        named = dict(db.session.execute(select(QrCode.scene, QrCode.name).where(QrCode.scene.in_(keys))).all())
        return {k: (f"{named[k]} ({k})" if k in named else k) for k in keys}
    ids = [int(k) for k in keys if k.isdigit()]
    named = {str(i): n for i, n in db.session.execute(select(Brand.id, Brand.name).where(Brand.id.in_(ids))).all()}
    return {k: named.get(k, f"brand {k}") for k in keys}


def report(since: date, until: date, *, view: str = "last", grouping: str = "campaign",
           days: int | None = None) -> Report:
    """The funnel for store days `since`..`until` (both included), one row per campaign (brand)
    with any stage above zero, then the unattributed row ("") if any; totals in `.total`."""
    if view not in VIEWS:
        raise ValueError(f"view is one of {', '.join(VIEWS)}")
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping is one of {', '.join(GROUPINGS)}")
    if until < since:
        raise ValueError("the range ends before it starts")
    days = attribution_days() if days is None else days
    start, end = day_start(since), day_start(until + timedelta(days=1))
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # JIT compiling this statement cost more than it saved (2 s of 10 in bench/funnel.py).
        db.session.execute(text("SET LOCAL jit = off"))
    sql = text(_sql(dialect, view, grouping)).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
    params: dict[str, object] = {"start": start, "end": end, "days": days}
    if view == "last":
        sql = sql.bindparams(bindparam("start_window", type_=UTCDateTime()))
        params["start_window"] = start - timedelta(days=days)
    rows: dict[str, Row] = {}
    total = Row(ALL, "合计 total")
    for part, key, scans, follows, members, visits, paying, fen in db.session.execute(sql, params):
        if part in ("t", "v"):
            row = total
        else:
            row = rows.setdefault(key or "", Row(key or ""))
        if part in ("u", "v"):
            row.scans, row.follows = int(scans), int(follows)
        else:
            row.members, row.visits, row.paying, row.sales_fen = int(members), int(visits), int(paying), int(fen)
    named = sorted(k for k in rows if k)
    labels = _labels(grouping, named)
    ordered = [rows[k] for k in named]
    for row in ordered:
        row.label = labels[row.key]
    if "" in rows:
        rows[""].label = "— 无活动 unattributed" if grouping == "campaign" else "— 无品牌 no brand"
        ordered.append(rows[""])
    return Report(since, until, view, grouping, days, ordered, total)


# -- what the console shows: the chart and the CSV (pure) -------------------------------------------

def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def rate_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def funnel_svg(row: Row, width: int = 640) -> str:
    """A funnel chart of one row (the totals, usually) as standalone SVG: one centred bar per
    stage, its width proportional to the shoppers at that stage (sales, in fen, on its own scale
    as the last bar, full width when above 0), labelled with the count and the step's rate. No
    script and no external reference, so the console serves it inline."""
    counts = [row.scans, row.follows, row.members, row.visits, row.paying]
    top = max(counts) or 1
    rates = row.rates()
    bar_h, gap, pad, label_w = 34, 8, 10, 150
    inner = width - label_w - 2 * pad
    height = pad * 2 + 6 * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="funnel" class="funnel-chart">']
    colours = ("#0a7", "#1a8", "#2a9", "#3ab", "#4ac", "#e90")
    for n, stage in enumerate(STAGES):
        y = pad + n * (bar_h + gap)
        if stage == "sales_fen":
            w = inner if row.sales_fen > 0 else 0
            text = f"¥{yuan(row.sales_fen)}"
        else:
            w = round(inner * getattr(row, stage) / top)
            rate = rates.get(stage)
            text = f"{getattr(row, stage)}" + (f" ({rate_text(rate)})" if stage in rates else "")
        x = label_w + pad + (inner - w) / 2
        parts.append(f'<text x="{pad}" y="{y + bar_h * 0.65:.0f}" font-size="13">{escape(STAGE_LABELS[stage])}</text>')
        parts.append(f'<rect class="stage stage-{stage}" data-stage="{stage}" x="{x:.1f}" y="{y}" width="{w}" '
                     f'height="{bar_h}" rx="3" fill="{colours[n]}"/>')
        parts.append(f'<text x="{label_w + pad + inner / 2:.0f}" y="{y + bar_h * 0.65:.0f}" font-size="13" '
                     f'text-anchor="middle" class="stage-value">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


CSV_COLUMNS = ("key", "name", "scans", "follows", "members", "visits", "paying members", "sales (yuan)",
               "follow rate", "member rate", "visit rate", "paying rate", "overall rate")


def csv_rows(result: Report) -> list[list[str]]:
    """The table as CSV cells: every row, then the totals. Cells a spreadsheet would run as a
    formula are quoted (members.audit.safe_cell)."""
    out = [list(CSV_COLUMNS)]
    for row in [*result.rows, result.total]:
        r = row.rates()
        out.append([safe_cell(v) for v in (row.key, row.label, row.scans, row.follows, row.members, row.visits,
                                           row.paying, f"{row.sales_fen / 100:.2f}", rate_text(r["follows"]),
                                           rate_text(r["members"]), rate_text(r["visits"]), rate_text(r["paying"]),
                                           rate_text(r["overall"]))])
    return out
