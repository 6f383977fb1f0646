"""Birthday and anniversary benefits: which members are due on a store day, and their coupons.

Days are store days (Asia/Shanghai). A coupon is issued once per member, kind and year (its source
key), so a job that runs twice, or twice at once, hands out one coupon; the greeting is queued
after commit only when the coupon was issued just now, and carries the coupon's source key as
WeChat's client_msg_id so a resent greeting is deduplicated by WeChat too.
"""
from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import extract, or_, select

from members import coupons
from members.ledger import SHANGHAI
from members.models import Coupon, Member, MemberIdentity
from members.program import Benefit, load_program
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit

log = logging.getLogger(__name__)

GREETING_JOB = "members.benefit_jobs.send_benefit_greeting"


def store_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(SHANGHAI).date()


def celebrates_on(anniversary: date, day: date) -> bool:
    """Whether a yearly date falls on `day`: 29 February is kept on 28 February in other years."""
    if (anniversary.month, anniversary.day) == (day.month, day.day):
        return True
    return (anniversary.month, anniversary.day) == (2, 29) and (day.month, day.day) == (2, 28) \
        and not calendar.isleap(day.year)


def joined_on(member: Member) -> date:
    return member.joined_at.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Grant:
    member_id: int
    kind: str  # birthday | anniversary
    coupon: Coupon
    new: bool
    greeted: bool  # a greeting was queued (new coupon and an OA openid)


def _month_days(day: date) -> list[tuple[int, int]]:
    """(month, day) pairs whose yearly date can fall on `day` (29 Feb on 28 Feb)."""
    pairs = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        pairs.append((2, 29))
    return pairs


def members_due(day: date) -> list[Member]:
    """Active members with a birthday or a joining anniversary (1 year or more) on `day`.

    The database narrows by month/day: of the birthday, and of joined_at on the day before, the
    day and the day after (the database may extract it in UTC or in its own time zone); the exact
    rule, in store time, is applied here."""
    pairs = _month_days(day)
    near = set()
    for month, dom in pairs:  # 2000: a leap year, so 29 February exists
        middle = date(2000, month, dom)
        near |= {((middle + timedelta(days=k)).month, (middle + timedelta(days=k)).day) for k in (-1, 0, 1)}
    birthday = or_(*[(extract("month", Member.birthday) == m) & (extract("day", Member.birthday) == d) for m, d in pairs])
    joined = or_(*[(extract("month", Member.joined_at) == m) & (extract("day", Member.joined_at) == d)
                   for m, d in sorted(near)])
    candidates = db.session.scalars(select(Member).where(Member.status == "active", or_(birthday, joined))
                                    .order_by(Member.id))
    return [m for m in candidates
            if (m.birthday and celebrates_on(m.birthday, day))
            or (celebrates_on(joined_on(m), day) and day.year - joined_on(m).year >= 1)]


def oa_openid(member_id: int) -> str | None:
    return db.session.scalar(select(MemberIdentity.openid).where(
        MemberIdentity.member_id == member_id, MemberIdentity.kind == "oa").order_by(MemberIdentity.id))


def _issue(member: Member, kind: str, benefit: Benefit, value_fen: int, day: date) -> Grant:
    coupon, new = coupons.issue(member.id, kind, benefit.title, value_fen, benefit.valid_days,
                                f"{kind}:{member.id}:{day.year}")
    greeted = False
    if new and oa_openid(member.id):
        enqueue_after_commit(GREETING_JOB, coupon_id=coupon.id)
        greeted = True
    return Grant(member.id, kind, coupon, new, greeted)


def grant_for_member(member: Member, day: date) -> list[Grant]:
    """Issue what `member` is due on `day` (once a year each); queue the greetings after commit."""
    program = load_program()
    grants = []
    if member.birthday and celebrates_on(member.birthday, day):
        grants.append(_issue(member, "birthday", program.birthday, program.birthday.value_fen_for(member.level), day))
    joined = joined_on(member)
    if celebrates_on(joined, day) and day.year - joined.year >= 1:
        grants.append(_issue(member, "anniversary", program.anniversary,
                             program.anniversary.value_fen_for(member.level), day))
    return grants


def grant_birthday_and_anniversary(today: date | None = None) -> list[Grant]:
    """The daily benefit run for one store day (today by default). Safe to run again."""
    day = today or store_today()
    grants = [grant for member in members_due(day) for grant in grant_for_member(member, day)]
    log.info("benefits for %s: %d coupons issued, %d already issued", day,
             sum(g.new for g in grants), sum(not g.new for g in grants))
    return grants


def greeting_message(coupon: Coupon) -> dict | None:
    """The OA template message for a benefit coupon, or None when the member has no OA openid."""
    member = db.session.get(Member, coupon.member_id)
    openid = oa_openid(coupon.member_id)
    if member is None or openid is None:
        return None
    program = load_program()
    benefit = program.birthday if coupon.kind == "birthday" else program.anniversary
    years = 0
    if coupon.kind == "anniversary":
        years = store_today(coupon.issued_at).year - joined_on(member).year
    text = benefit.greeting.format(name=member.name or "亲爱的会员", value=coupon.value_fen // 100, years=years)
    expires = coupon.expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d")
    return {"touser": openid, "template_id": program.benefit_template_id, "client_msg_id": coupon.source_key,
            "data": {"first": {"value": text}, "keyword1": {"value": coupon.title},
                     "keyword2": {"value": f"{coupon.value_fen // 100}元"}, "keyword3": {"value": expires},
                     "remark": {"value": "到店出示券码即可使用。"}}}
