"""The audit log of staff writes (issue 12): each write path appends exactly one entry with the
right before/after, in the write's own unit of work (a rolled-back write leaves none), and the
table refuses UPDATE (and, on Postgres, DELETE) whatever the code tries."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from members import audit, points
from members import staff as staff_service
from members.exceptions import SameStaffCannotApprove
from members.models import AuditEntry, Member
from payments import cashier, counter, jobs
from service_desk import panel
from service_desk.models import ASSIGNED
from tests.integration.desk_read_helpers import agent, conv
from tests.integration.members_helpers import make_member, make_staff, uow
from tests.integration.test_cashier import shopper_code
from tests.integration.test_pay_jobs import paid_order
from tests.integration.test_service_desk import make_agent, make_team

PHONE = "13912345678"


def entries(app) -> list[AuditEntry]:
    with uow(app) as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        session.expunge_all()
        return rows


def shape(entry: AuditEntry) -> tuple:
    return entry.staff_id, entry.action, entry.subject, entry.before, entry.after, entry.detail


# -- record ----------------------------------------------------------------------------------------

def test_record_appends_in_the_callers_unit_of_work_and_a_rollback_leaves_nothing(app):
    lin = make_staff(app, "lin")
    with uow(app):
        audit.record(lin, "points.adjust", "member:1", before={"points_balance": 0}, after={"points_balance": 5},
                     detail="goodwill")
    with pytest.raises(RuntimeError), uow(app):
        audit.record(lin, "points.adjust", "member:2")
        raise RuntimeError("the request failed after the write")
    rows = entries(app)
    assert [shape(e) for e in rows] == [(lin, "points.adjust", "member:1", {"points_balance": 0},
                                         {"points_balance": 5}, "goodwill")]
    assert rows[0].at.tzinfo is not None and abs(rows[0].at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    with pytest.raises(ValueError), uow(app):
        audit.record(lin, "", "member:1")


def test_nothing_in_the_code_updates_or_deletes_an_entry():
    """Append-only by construction too: no module but the migration names the table in a write."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for package in ("members", "payments", "reservations", "service_desk", "marketing", "wx_service", "handlers"):
        for path in (root / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for needle in ("update(AuditEntry", "delete(AuditEntry", "AuditEntry).update", "AuditEntry).delete"):
                assert needle not in source, (path, needle)


def test_the_database_refuses_to_update_an_entry(app):
    with uow(app):
        audit.record(None, "role.grant", "staff:1", after={"roles": ["admin"]}, detail="cli")
    with pytest.raises(DatabaseError, match="append-only"), uow(app) as session:
        session.execute(update(AuditEntry).values(detail="rewritten"))
    with pytest.raises(DatabaseError, match="append-only"), uow(app) as session:
        session.execute(text("UPDATE audit_entries SET after = NULL"))
    assert [e.detail for e in entries(app)] == ["cli"]


def test_postgres_refuses_to_delete_an_entry(app):
    with app.app_context():
        if app.extensions["wx"].db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite keeps DELETE possible: the embedded suite empties tables with it")
    with uow(app):
        audit.record(None, "role.grant", "staff:1", detail="cli")
    with pytest.raises(DatabaseError, match="append-only"), uow(app) as session:
        session.execute(delete(AuditEntry))
    assert len(entries(app)) == 1


# -- points ----------------------------------------------------------------------------------------

def test_points_adjust_approve_and_reject_each_write_one_entry(app):
    lin, wu = make_staff(app, "lin"), make_staff(app, "wu")
    member = make_member(app)
    with uow(app):
        small = points.request_adjustment(member, 300, "生日补积分", lin).id
    with uow(app):
        big = points.request_adjustment(member, 5000, "大额补偿", lin).id
        refused_big = points.request_adjustment(member, 2000, "重复补偿", lin).id
    with pytest.raises(SameStaffCannotApprove), uow(app):
        points.approve_adjustment(big, lin)  # refused: rolled back, no entry
    with uow(app):
        points.approve_adjustment(big, wu)
    with uow(app):
        points.approve_adjustment(big, wu)  # already applied: nothing changes, nothing recorded
        points.reject_adjustment(refused_big, wu)
        points.reject_adjustment(refused_big, wu)  # already rejected: nothing recorded
    assert [shape(e) for e in entries(app)] == [
        (lin, "points.adjust", f"member:{member}", {"points_balance": 0},
         {"points_balance": 300, "adjustment": small, "delta": 300, "status": "applied"}, "生日补积分"),
        (lin, "points.adjust", f"member:{member}", {"points_balance": 300},
         {"points_balance": 300, "adjustment": big, "delta": 5000, "status": "pending"}, "大额补偿"),
        (lin, "points.adjust", f"member:{member}", {"points_balance": 300},
         {"points_balance": 300, "adjustment": refused_big, "delta": 2000, "status": "pending"}, "重复补偿"),
        (wu, "points.approve", f"adjustment:{big}", {"status": "pending", "points_balance": 300},
         {"status": "applied", "points_balance": 5300, "member": member, "delta": 5000}, "大额补偿"),
        (wu, "points.reject", f"adjustment:{refused_big}", {"status": "pending"},
         {"status": "rejected", "member": member, "delta": 2000}, "重复补偿"),
    ]


def test_points_cli_adjustment_is_recorded_as_its_staff_member(app):
    lin = make_staff(app, "lin")
    member = make_member(app)
    result = app.test_cli_runner().invoke(args=["points", "adjust", str(member), "-50", "--reason", "退货扣回",
                                                "--staff", "lin"])
    assert result.exit_code == 1 and "refused" in result.output
    # the member has no points: the ledger refuses, the adjustment rolls back, and so does its entry
    assert [shape(e)[:3] for e in entries(app)] == []
    result = app.test_cli_runner().invoke(args=["points", "adjust", str(member), "50", "--reason", "补登",
                                                "--staff", "lin"])
    assert result.exit_code == 0, result.output
    assert [shape(e)[:3] for e in entries(app)] == [(lin, "points.adjust", f"member:{member}")]


# -- roles and staff -------------------------------------------------------------------------------

def test_a_role_grant_is_recorded_once_and_a_repeat_is_not(app):
    boss = make_staff(app, "boss")
    mei = make_staff(app, "mei")
    with uow(app):
        staff_service.grant_role("mei", "counter", "1F-cosmetics", by_staff_id=boss)
        staff_service.grant_role("mei", "counter", "1F-cosmetics", by_staff_id=boss)  # idempotent: no entry
    with pytest.raises(ValueError), uow(app):
        staff_service.grant_role("mei", "counter", "", by_staff_id=boss)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "grant-role", "mei", "admin"]).exit_code == 0
    assert [shape(e) for e in entries(app)] == [
        (boss, "role.grant", f"staff:{mei}", {"roles": []}, {"roles": ["counter:1F-cosmetics"]}, ""),
        (None, "role.grant", f"staff:{mei}", {"roles": ["counter:1F-cosmetics"]},
         {"roles": ["admin", "counter:1F-cosmetics"]}, "cli"),
    ]
    assert runner.invoke(args=["staff", "grant-role", "mei", "counter", "--counter", "B1",
                               "--staff", "boss"]).exit_code == 0
    assert shape(entries(app)[-1])[:3] == (boss, "role.grant", f"staff:{mei}")


def test_staff_added_and_passwords_set_from_the_cli_are_recorded_without_the_password(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "add", "zhao", "赵"]).exit_code == 0
    assert runner.invoke(args=["staff", "password", "zhao", "--password", "s3cret-pass"]).exit_code == 0
    rows = entries(app)
    assert [(e.staff_id, e.action, e.detail) for e in rows] == [(None, "staff.add", "cli"),
                                                                  (None, "staff.password", "cli")]
    assert rows[0].after == {"username": "zhao", "name": "赵"}
    assert "s3cret" not in repr([shape(e) for e in rows])


# -- refunds ---------------------------------------------------------------------------------------

def test_a_refund_request_is_recorded_once_with_the_money_before_and_after(app, base_url):
    lin = make_staff(app, "lin")
    paid_order(app, base_url, "N-audit-refund", 10_000, make_member(app))
    with uow(app):
        first = jobs.request_refund("N-audit-refund", 3_000, "退一件", "R-audit-1", staff_id=lin).out_refund_no
        jobs.request_refund("N-audit-refund", 3_000, "退一件", "R-audit-1", staff_id=lin)  # the same refund
    with pytest.raises(jobs.service.RefundRefused), uow(app):
        jobs.request_refund("N-audit-refund", 7_001, "多退", staff_id=lin)
    result = app.test_cli_runner().invoke(args=["pay", "refund", "N-audit-refund", "20", "--reason", "再退一件",
                                                "--refund-no", "R-audit-2"])
    assert result.exit_code == 0, result.output
    assert [shape(e) for e in entries(app)] == [
        (lin, "refund.request", "order:N-audit-refund", {"state": "PAID", "refunds_committed_fen": 0},
         {"out_refund_no": first, "amount_fen": 3_000, "refunds_committed_fen": 3_000, "status": "PROCESSING",
          "reason": "退一件"}, ""),
        (None, "refund.request", "order:N-audit-refund", {"state": "PAID", "refunds_committed_fen": 3_000},
         {"out_refund_no": "R-audit-2", "amount_fen": 2_000, "refunds_committed_fen": 5_000,
          "status": "PROCESSING", "reason": "再退一件"}, "cli"),
    ]


# -- desk ------------------------------------------------------------------------------------------

def test_each_phone_reveal_is_an_audit_entry_without_the_number(app):
    team = make_team(app, "1F-cosmetics")
    lin_agent = make_agent(app, team, "lin")
    member = make_member(app, name="李先生")
    with uow(app) as session:
        session.get(Member, member).phone = PHONE
    c = conv(app, "oAuditReveal00001", team_id=team, status=ASSIGNED, assignee=lin_agent, member_id=member)
    for _ in range(2):
        with uow(app) as session:
            me = agent(session, lin_agent)
            staff_id = me.staff_id
            assert panel.reveal_phone(me, c) == PHONE
    setup, *rows = entries(app)
    assert (setup.action, setup.after) == ("role.grant", {"roles": ["agent"]})  # making lin an agent
    assert [shape(e) for e in rows] == [(staff_id, "desk.phone_reveal", f"member:{member}", None,
                                         {"conversation": c, "agent": lin_agent}, "")] * 2
    assert PHONE not in repr([shape(e) for e in rows])


# -- orders at the counter and the till ------------------------------------------------------------

def test_a_counter_order_and_its_cancel_are_recorded_as_the_staff_members(app, base_url):
    lin = make_staff(app, "lin")
    with app.app_context():
        order = counter.open_native_order(12_800, "1F-cosmetics", lin, "口红")
        counter.cancel(order.out_trade_no, staff_id=lin)
        counter.cancel(order.out_trade_no, staff_id=lin)  # closed already: nothing more
    no = order.out_trade_no
    assert [shape(e) for e in entries(app)] == [
        (lin, "order.create", f"order:{no}", None,
         {"kind": "native", "amount_fen": 12_800, "counter": "1F-cosmetics", "state": "CREATED", "source": ""}, ""),
        (lin, "order.cancel", f"order:{no}", {"state": "CREATED"}, {"state": "CLOSED"}, ""),
    ]


def test_a_till_charge_is_recorded_and_a_refused_one_is_not(app, base_url):
    lin = make_staff(app, "lin")
    with pytest.raises(cashier.CashierRefused), uow(app):
        cashier.start_codepay(100, "not-a-code", "till-1", lin, "x")
    with uow(app):
        no = cashier.start_codepay(1_230, shopper_code(base_url), "till-1", lin, "测试商品").out_trade_no
    assert [shape(e) for e in entries(app)] == [
        (lin, "order.create", f"order:{no}", None,
         {"kind": "codepay", "amount_fen": 1_230, "counter": "till-1", "state": "CREATED", "source": "cashier"}, ""),
    ]


# -- reading and CSV -------------------------------------------------------------------------------

def test_filters_pick_by_staff_action_prefix_subject_and_store_days(app):
    lin, wu = make_staff(app, "lin"), make_staff(app, "wu")
    with uow(app) as session:
        # 2026-03-01 23:30 in Shanghai is 15:30 UTC; 2026-03-02 00:30 Shanghai is 16:30 UTC on the 1st.
        for at, who, action, subject in [
            (datetime(2026, 3, 1, 15, 30, tzinfo=timezone.utc), lin, "points.adjust", "member:1"),
            (datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc), wu, "points.approve", "adjustment:7"),
            (datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc), None, "role.grant", "staff:2"),
            (datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc), lin, "refund.request", "order:N20260303"),
        ]:
            session.add(AuditEntry(at=at, staff_id=who, action=action, subject=subject, detail=""))

    def found(**kw) -> list[str]:
        with uow(app):
            rows, _more = audit.page(audit.Filters(**kw))
            return [r.entry.subject for r in rows]

    assert found() == ["order:N20260303", "staff:2", "adjustment:7", "member:1"]  # newest first
    assert found(staff="lin") == ["order:N20260303", "member:1"]
    assert found(staff="cli") == ["staff:2"]
    assert found(action="points.") == ["adjustment:7", "member:1"]
    assert found(action="points_") == []  # LIKE wildcards are taken literally
    assert found(subject="order:") == ["order:N20260303"]
    assert found(subject="order:N2026*") == ["order:N20260303"]
    assert found(subject="member:1") == ["member:1"] and found(subject="member:") == ["member:1"]
    assert found(since=date(2026, 3, 2), until=date(2026, 3, 2)) == ["adjustment:7"]
    assert found(since=date(2026, 3, 3)) == ["order:N20260303", "staff:2"]
    assert found(until=date(2026, 3, 1)) == ["member:1"]
    with uow(app):
        first, more = audit.page(audit.Filters(), 1, 3)
        second, more_after = audit.page(audit.Filters(), 2, 3)
    assert len(first) == 3 and more and [r.entry.subject for r in second] == ["member:1"] and not more_after


@pytest.mark.parametrize("value, cell", [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-2", "'-2"),
                                         ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("ok=1", "ok=1"), ("", ""),
                                         (None, ""), (12, "12")])
def test_csv_cells_that_a_spreadsheet_would_run_get_an_apostrophe(value, cell):
    assert audit.safe_cell(value) == cell


def test_csv_lines_parse_back_to_the_entries(app):
    lin = make_staff(app, "lin")
    with uow(app) as session:
        session.add(AuditEntry(at=datetime(2026, 3, 1, 2, 3, 4, tzinfo=timezone.utc), staff_id=lin,
                               action="points.adjust", subject="member:1", before={"points_balance": 0},
                               after={"points_balance": -5, "note": "退货, \"整单\""}, detail="=1+1"))
    with uow(app):
        text_csv = "".join(audit.csv_lines(audit.iter_rows(audit.Filters())))
    rows = list(csv.reader(io.StringIO(text_csv)))
    with uow(app) as session:
        entry_id = session.scalar(select(AuditEntry.id))
    assert rows == [list(audit.CSV_COLUMNS),
                    [str(entry_id), "2026-03-01 10:03:04", "lin", "points.adjust", "member:1",
                     '{"points_balance":0}', '{"note":"退货, \\"整单\\"","points_balance":-5}', "'=1+1"]]


# -- coupons and desk agents -----------------------------------------------------------------------

def test_a_coupon_redeemed_at_the_counter_is_recorded_once(app):
    from members import coupons

    carol = make_staff(app, "carol")
    member = make_member(app)
    with uow(app):
        coupon = coupons.issue(member, "birthday", "生日礼券", 5_000, 30, "birthday:x:2026")[0]
        code, coupon_id = coupon.code, coupon.id
    runner = app.test_cli_runner()
    assert runner.invoke(args=["coupon", "redeem", code, "--staff", "carol"]).exit_code == 0
    assert runner.invoke(args=["coupon", "redeem", code, "--staff", "carol"]).exit_code != 0  # refused: none
    assert [shape(e) for e in entries(app)] == [
        (carol, "coupon.redeem", f"coupon:{coupon_id}", {"redeemed": False},
         {"redeemed": True, "member": member, "value_fen": 5_000}, "")]


def test_making_a_staff_member_a_desk_agent_is_recorded_as_the_clis(app):
    lin = make_staff(app, "lin")
    make_team(app, "LANCOME")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["desk", "agent-add", "lin", "LANCOME", "--max-open", "3"]).exit_code == 0
    assert runner.invoke(args=["desk", "agent-add", "ghost", "LANCOME"]).exit_code != 0
    rows = entries(app)  # agent-add grants the agent role, then puts them in the team
    assert [(e.staff_id, e.action, e.subject, e.detail) for e in rows] == [
        (None, "role.grant", f"staff:{lin}", "cli"), (None, "role.desk_agent", f"staff:{lin}", "cli")]
    assert rows[0].after == {"roles": ["agent"]}
    assert rows[1].after["team"] == "LANCOME" and rows[1].after["max_open"] == 3
