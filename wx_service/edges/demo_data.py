"""Demo data for one department store, so the demo has something to show. Idempotent."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from marketing.models import Article, QrCode, StoreInfo
from wx_service.edges.demo_content import load_demo_content
from wx_service.edges.demo_funnel import load_demo_funnel
from wx_service.edges.demo_subscriptions import load_demo_subscriptions
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db

STORE = dict(name="南山百货（示范店）", address="示范市南山区海岸路 88 号",
             opening_hours="周一至周日 10:00-22:00", phone="0755-0000-0000")

ARTICLES = [
    ("news", "南山百货焕新开业", "一至五层全面升级，新增 40 个品牌"),
    ("news", "会员日预告", "每月 18 日会员积分双倍"),
    ("activity", "双十二满 300 减 50", "全场化妆品、服饰参与"),
    ("activity", "周末亲子手作课", "五楼儿童区，扫码预约"),
    ("activity", "美妆柜台免费试妆", "二楼美妆区，每日 14:00-18:00"),
    ("brand", "本周推荐品牌：山茶花", "新品首发，会员专享礼"),
    ("new_product", "冬季新品到店", "羽绒服、羊绒围巾"),
    ("discount", "超市生鲜晚市 8 折", "每日 20:00 之后"),
]

QR_CODES = [
    ("counter-cosmetics-l2", "二楼美妆柜台", "感谢光临二楼美妆柜台！本周到店试妆即送小样一份。"),
    ("campaign-double12", "双十二活动海报", "双十二满 300 减 50，活动详情请点击菜单“近期活动”。"),
]


def load_demo_data() -> str:
    session = db.session
    if session.scalar(select(func.count()).select_from(StoreInfo)) == 0:
        session.add(StoreInfo(**STORE))
    if session.scalar(select(func.count()).select_from(Article)) == 0:
        now = utcnow()
        for i, (kind, title, description) in enumerate(ARTICLES):
            session.add(Article(kind=kind, title=title, description=description,
                                url=f"https://example.com/articles/{i + 1}",
                                image_url=f"https://example.com/images/{i + 1}.jpg",
                                published_at=now - timedelta(hours=i)))
    for scene, name, follow_up in QR_CODES:
        if session.scalar(select(QrCode).where(QrCode.scene == scene)) is None:
            # Demo codes point at the emulator's scan page; real ones come from `qrcode create`.
            session.add(QrCode(scene=scene, name=name, permanent=True, ticket=f"demo-{scene}",
                               url=f"http://weixin.qq.com/q/demo-{scene}", follow_up_text=follow_up))
    session.flush()
    members = load_demo_members()
    reservations = load_demo_reservations()
    load_demo_content()
    load_demo_funnel()
    reservations += ", " + load_demo_subscriptions()
    return (f"demo store ready: {session.scalar(select(func.count()).select_from(Article))} articles, "
            f"{session.scalar(select(func.count()).select_from(QrCode))} QR codes, {members} members, {reservations}")


# One member per level: (level, name, phone, card code, spend in yuan that reaches the level).
DEMO_MEMBERS = [
    ("silver", "林小银", "13800000001", "880000000001", 300),
    ("gold", "王金", "13800000002", "880000000002", 6_000),
    ("platinum", "陈白金", "13800000003", "880000000003", 25_000),
    ("diamond", "赵钻石", "13800000004", "880000000004", 60_000),
]


# The demo's console sign-ins, printed by `serve-demo`. Only serve-demo (emulator on) sets them:
# `demo` is an admin (every page, every counter's reservations), `counter1` works the beauty counter
# (its reservations and till) and the cashier page; the desk's agents (below) hold `agent` only.
DEMO_STAFF = ("demo", "演示店员", "demo-pass-1234")
DEMO_COUNTER_STAFF = ("counter1", "兰蔻柜台小周", "counter1-pass-1234", "LANCOME")
# The office: content and campaigns (marketing), and the read-only reports (analyst).
DEMO_OFFICE_STAFF = (("market1", "市场部小林", "market1-pass-1234", "marketing"),
                     ("analyst1", "数据分析小吴", "analyst1-pass-1234", "analyst"))


def load_demo_staff() -> str:
    """Console users for the demo, with known passwords (serve-demo only, never production)."""
    from members import staff as staff_service
    from members.models import Staff

    username, name, password = DEMO_STAFF
    counter_user, counter_name, counter_password, counter = DEMO_COUNTER_STAFF
    office = [(login, display, secret) for login, display, secret, _ in DEMO_OFFICE_STAFF]
    for login, display, secret in ((username, name, password), (counter_user, counter_name, counter_password), *office):
        if staff_service.get_staff(login) is None:
            db.session.add(Staff(username=login, name=display))
            db.session.flush()
            staff_service.set_password(login, secret)
    staff_service.grant_role(username, staff_service.ADMIN, detail="demo")
    staff_service.grant_role(counter_user, staff_service.COUNTER, counter, detail="demo")
    staff_service.grant_role(counter_user, staff_service.CASHIER, detail="demo")
    for login, _, _, role in DEMO_OFFICE_STAFF:
        staff_service.grant_role(login, role, detail="demo")
    (market, _, market_password, _), (analyst, _, analyst_password, _) = DEMO_OFFICE_STAFF
    return (f"console: http://<host>/console/ (sign in as {username} / {password}, admin; "
            f"{counter_user} / {counter_password} for the {counter} counter and the cashier page; "
            f"{market} / {market_password} for content and brand news; {analyst} / {analyst_password} for the funnel)")


def load_demo_members() -> int:
    """Members at every level, with points from one payment each and, once the card exists on
    (emulated) WeChat, an active card already in sync. Idempotent by openid, payment and code."""
    from datetime import date

    from members.cards import current_definition
    from members.identity import bind_phone, resolve_member, set_profile
    from members.models import MemberCard, PointsEntry
    from members.points import award_for_payment

    definition = current_definition()
    for level, name, phone, code, spend_yuan in DEMO_MEMBERS:
        openid = f"oDemoMember{level.capitalize()}"
        member = bind_phone(resolve_member("oa", openid).id, phone)
        set_profile(member.id, name=name, birthday=date(1990, 1 + len(level), 8))
        award_for_payment(member.id, spend_yuan * 100, f"demo:{level}", utcnow())
        if definition is not None and db.session.scalar(select(MemberCard).where(MemberCard.code == code)) is None:
            latest = db.session.scalar(select(func.max(PointsEntry.id)).where(PointsEntry.member_id == member.id)) or 0
            db.session.add(MemberCard(member_id=member.id, card_id=definition.card_id, code=code, openid=openid,
                                      status="active", outer_str="demo", activated_at=utcnow(),
                                      synced_ledger_id=latest, synced_level=member.level))
    db.session.flush()
    return len(DEMO_MEMBERS)


# The demo's customer-service desk: one team, two agents who sign in to /console/desk (serve-demo
# prints them), the FAQ that answers first, and shared canned replies.
DEMO_TEAM = ("service", "顾客服务台")
DEMO_AGENTS = [("kefu1", "客服小林", "kefu1-pass-1234"), ("kefu2", "客服小美", "kefu2-pass-1234")]
DEMO_FAQ = [
    ("停车怎么收费？", "停车|车位|停车场", "B1、B2 为停车场：会员每次消费后可免费停车 2 小时，之后每小时 5 元。"),
    ("营业时间？", "营业时间|几点开门|几点关门|开门|关门", "南山百货每天 10:00-22:00 营业，超市 9:00 开门。"),
    ("怎么退换货？", "退货|换货|退换|退款", "购物 7 天内凭小票和原包装到一楼服务台办理退换货；化妆品开封后不退。"),
    ("会员积分怎么算？", "积分|会员积分|积分规则", "消费 1 元积 1 分，每月 18 日会员日双倍积分；积分可在会员卡里查看和兑换。"),
]
DEMO_CANNED = [
    ("/hi", "您好，我是南山百货客服，很高兴为您服务，请问有什么可以帮您？"),
    ("/wait", "好的，我帮您查询一下，请稍等片刻。"),
    ("/bye", "感谢您的咨询，祝您购物愉快！如还有问题，欢迎随时联系我们。"),
]


def load_demo_desk() -> str:
    """The desk's team, two agents (online, so the demo's 人工 reaches them), FAQ entries and shared
    canned replies. Idempotent by team code, username, question and shortcut. serve-demo only."""
    from members import staff as staff_service
    from members.models import Staff
    from service_desk.models import Agent, CannedReply, FaqEntry, Team

    code, name = DEMO_TEAM
    team = db.session.scalar(select(Team).where(Team.code == code))
    if team is None:
        team = Team(code=code, name=name)
        db.session.add(team)
        db.session.flush()
    for username, display, password in DEMO_AGENTS:
        staff = staff_service.get_staff(username)
        if staff is None:
            staff = Staff(username=username, name=display)
            db.session.add(staff)
            db.session.flush()
            staff_service.set_password(username, password)
        if db.session.scalar(select(Agent).where(Agent.staff_id == staff.id)) is None:
            db.session.add(Agent(staff_id=staff.id, team_id=team.id, status="online", max_open=5, open_load=0))
        staff_service.grant_role(username, staff_service.AGENT)  # the desk's door: see roster.add_agent
    for priority, (question, pattern, answer) in enumerate(reversed(DEMO_FAQ)):
        if db.session.scalar(select(FaqEntry).where(FaqEntry.question == question)) is None:
            db.session.add(FaqEntry(question=question, pattern=pattern, is_regex=False, answer=answer,
                                    priority=priority, active=True))
    for shortcut, body in DEMO_CANNED:
        if db.session.scalar(select(CannedReply).where(CannedReply.shortcut == shortcut,
                                                       CannedReply.owner_id.is_(None))) is None:
            db.session.add(CannedReply(shortcut=shortcut, body=body, owner_id=None))
    db.session.flush()
    agents = ", ".join(f"{u} / {p}" for u, _, p in DEMO_AGENTS)
    return f"customer-service desk: http://<host>/console/desk (agents {agents})"


# Reservations: four services at four counters, each open 10:00-22:00 every day, the store open
# late on the coming Friday and closed on New Year's Day, and goods shoppers can hold to try on.
# (service code, name, counter, duration, buffer, lead minutes, horizon days, description,
#  [(resource, kind, capacity)])
DEMO_SERVICES = [
    ("beauty", "美容咨询", "LANCOME", 45, 15, 60, 30, "二楼兰蔻专柜：肌肤测试与护肤建议",
     [("美容顾问 小美", "staff", 1), ("美容顾问 小雅", "staff", 1)]),
    ("alteration", "裁缝修改", "TAILOR", 30, 0, 60, 14, "三楼裁缝部：裤长、袖长、腰围修改",
     [("王师傅", "staff", 1), ("修改台", "station", 2)]),
    ("personal-shopper", "私人购物顾问", "VIP", 90, 30, 1440, 30, "五楼贵宾室：一对一陪同选购",
     [("购物顾问 陈女士", "staff", 1)]),
    ("fitting-room", "试衣间", "FASHION", 20, 5, 30, 7, "四楼女装：预留试衣间",
     [("1号试衣间", "room", 1), ("2号试衣间", "room", 1), ("贵宾试衣间", "room", 2)]),
]
DEMO_HOURS = "daily 10:00-22:00"
DEMO_LATE_NIGHT = ("10:00-23:30", "周五夜场")
DEMO_HOLIDAY = "元旦闭店"
# (counter, brand, product, variant, holdable)
DEMO_GOODS = [
    ("LANCOME", "兰蔻", "小黑瓶精华", "30ml", 5),
    ("LANCOME", "兰蔻", "小黑瓶精华", "50ml", 3),
    ("LANCOME", "兰蔻", "菁纯口红", "#196", 4),
    ("FASHION", "山茶花", "羊绒大衣 驼色", "S", 2),
    ("FASHION", "山茶花", "羊绒大衣 驼色", "M", 2),
    ("FASHION", "山茶花", "羊绒大衣 驼色", "L", 1),
    ("FASHION", "北岸", "羊毛围巾", "燕麦色", 6),
]


def demo_special_days(today) -> tuple:
    """The coming Friday (today if it is one, the next if it is the holiday) and the coming New
    Year's Day, in store days."""
    from datetime import date

    new_year = date(today.year + 1, 1, 1)
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    return (friday + timedelta(days=7) if friday == new_year else friday), new_year


def load_demo_reservations() -> str:
    """Services, resources, hours, the two special days and holdable goods. Idempotent: each row
    is keyed by its natural key, and a variant already there keeps its counts (shoppers' holds)."""
    from reservations import setup
    from reservations.models import HoldableVariant
    from reservations.slots import ALL_COUNTERS, store_day

    for code, name, counter, duration, buffer, lead, horizon, description, resources in DEMO_SERVICES:
        setup.define_service(code, name, counter, duration, buffer, lead, horizon, description)
        for resource, kind, capacity in resources:
            setup.define_resource(code, resource, kind, capacity)
    for counter in sorted({row[2] for row in DEMO_SERVICES}):
        setup.set_hours(counter, DEMO_HOURS)
    friday, new_year = demo_special_days(store_day(utcnow()))
    setup.set_exception(ALL_COUNTERS, friday, *DEMO_LATE_NIGHT)
    setup.set_exception(ALL_COUNTERS, new_year, "closed", DEMO_HOLIDAY)
    for counter, brand, product, variant, holdable in DEMO_GOODS:
        found = db.session.scalar(select(HoldableVariant).where(
            HoldableVariant.counter_code == counter, HoldableVariant.product == product,
            HoldableVariant.variant == variant))
        if found is None:
            db.session.add(HoldableVariant(counter_code=counter, brand=brand, product=product, variant=variant,
                                           holdable=holdable, held=0))
    db.session.flush()
    return f"{len(DEMO_SERVICES)} bookable services, {len(DEMO_GOODS)} holdable goods"
