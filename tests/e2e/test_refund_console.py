"""The console's refund page over HTTP (issue 12): a cashier finds a paid order, refunds part and
then the rest against the emulated WeChat Pay; too much, an unknown order and an unpaid one are
refused with nothing written; the same form posted twice refunds once; each refund is audited as
`refund.request` with the cashier."""
from __future__ import annotations

import html
import re
import threading

import pytest
from sqlalchemy import func, select

from members import staff as staff_service
from members.models import AuditEntry
from payments.models import Refund
from tests.e2e.desk_helpers import PASSWORD, Console, make_plain_staff, sign_in
from tests.integration.members_helpers import uow
from tests.integration.test_pay_jobs import control, emu_refunds, order_row, place_native, refund_row, wait_until


def paid(app, base_url: str, out_trade_no: str, fen: int) -> str:
    """A Native order paid by the shopper through the emulator, its notification applied."""
    place_native(app, out_trade_no, fen)
    control(base_url, "pay", out_trade_no=out_trade_no, openid="o-refund-shopper")
    wait_until(lambda: order_row(app, out_trade_no).state == "PAID", f"{out_trade_no} paid")
    return out_trade_no


@pytest.fixture
def cashier(app, base_url) -> Console:
    make_plain_staff(app, "shouyin")
    with uow(app):
        staff_service.grant_role("shouyin", staff_service.CASHIER)
    return sign_in(base_url, "shouyin", PASSWORD)


def staff_id(app, username: str) -> int:
    with uow(app):
        return staff_service.get_staff(username).id


def the_form(console: Console, out_trade_no: str) -> dict[str, str]:
    """The refund form as the page draws it: its CSRF token and its own refund number."""
    page = console.get(f"/console/refunds/{out_trade_no}")
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(csrf_token|out_refund_no)"(?: id="[^"]*")? value="([^"]+)"', page.text))
    assert set(fields) == {"csrf_token", "out_refund_no"}, page.text
    return fields


def submit(console: Console, out_trade_no: str, form: dict[str, str], amount: str, reason: str = "退一件"):
    return console.http.post(console.url(f"/console/refunds/{out_trade_no}"), timeout=15, allow_redirects=False,
                             data={**form, "amount": amount, "reason": reason})


def shown(console: Console, out_trade_no: str) -> dict[str, str]:
    """The page's figures, as the cashier reads them."""
    text = console.get(f"/console/refunds/{out_trade_no}").text
    return {name: re.search(rf'id="{name}">([^<]*)<', text).group(1) for name in ("paid", "refunded", "in-flight", "left")}


def refunds_count(app) -> int:
    with uow(app) as session:
        return session.scalar(select(func.count()).select_from(Refund))


def refund_audits(app) -> list[AuditEntry]:
    with uow(app) as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "refund.request")
                                    .order_by(AuditEntry.id)))


def test_a_cashier_refunds_part_then_the_rest_and_sees_what_is_left(app, base_url, cashier, run_jobs):
    no = paid(app, base_url, "N-refund-page-1", 12_800)
    assert shown(cashier, no) == {"paid": "128.00", "refunded": "0.00", "in-flight": "0.00", "left": "128.00"}

    form = the_form(cashier, no)
    answer = submit(cashier, no, form, "30.1", "尺码不合适")
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/console/refunds/{no}?done={form['out_refund_no']}")
    page = cashier.get(answer.headers["Location"]).text
    assert f'id="refund-{form["out_refund_no"]}"' in page and "尺码不合适" in page and "¥30.10" in page
    assert 'id="done"' in page and 'id="done"' not in cashier.get(f"/console/refunds/{no}?done=R-someone-else").text
    run_jobs()
    wait_until(lambda: refund_row(app, form["out_refund_no"]).status == "SUCCESS", "the first refund settled")
    assert refund_row(app, form["out_refund_no"]).amount_fen == 3010  # exact fen, never a float
    assert order_row(app, no).state == "PARTIALLY_REFUNDED"
    assert shown(cashier, no) == {"paid": "128.00", "refunded": "30.10", "in-flight": "0.00", "left": "97.90"}
    assert "SUCCESS 退款成功" in cashier.get(f"/console/refunds/{no}").text

    rest = the_form(cashier, no)
    assert rest["out_refund_no"] != form["out_refund_no"]  # a fresh number for the next refund
    assert submit(cashier, no, rest, "97.90", "整单退").status_code == 303
    run_jobs()
    wait_until(lambda: refund_row(app, rest["out_refund_no"]).status == "SUCCESS", "the rest settled")
    assert order_row(app, no).state == "REFUNDED"
    page = cashier.get(f"/console/refunds/{no}").text
    assert 'id="nothing-left"' in page and 'id="refund-form"' not in page
    assert shown(cashier, no)["left"] == "0.00" and shown(cashier, no)["refunded"] == "128.00"
    assert [r["amount"]["refund"] for r in emu_refunds(base_url, no)] == [3010, 9790]


def test_more_than_is_left_is_refused_and_nothing_changes(app, base_url, cashier, run_jobs):
    no = paid(app, base_url, "N-refund-page-2", 10_000)
    too_much = submit(cashier, no, the_form(cashier, no), "100.01")
    assert too_much.status_code == 400
    assert "more than is left to refund: at most 100.00 yuan" in html.unescape(too_much.text)
    assert refunds_count(app) == 0 and refund_audits(app) == []

    assert submit(cashier, no, the_form(cashier, no), "60").status_code == 303
    second = submit(cashier, no, the_form(cashier, no), "40.01")  # 60 is in flight or refunded: 40 left
    assert second.status_code == 400 and "at most 40.00 yuan" in html.unescape(second.text)
    for bad in ("-1", "1e2", "12.345", "0", "", "１２"):
        refused = submit(cashier, no, the_form(cashier, no), bad)
        assert refused.status_code == 400, bad
    without_reason = submit(cashier, no, the_form(cashier, no), "1", "  ")
    assert without_reason.status_code == 400 and "退款原因" in without_reason.text
    run_jobs()
    assert refunds_count(app) == 1 and len(emu_refunds(base_url, no)) == 1


def test_an_unknown_order_is_not_found(app, base_url, cashier):
    assert cashier.get("/console/refunds/N-no-such-order").status_code == 404
    assert cashier.get("/console/refunds/api/orders/N-no-such-order").status_code == 404
    found = cashier.get("/console/refunds/?out_trade_no=N-no-such-order")
    assert found.status_code == 302 and found.headers["Location"].endswith("/console/refunds/N-no-such-order")
    posted = submit(cashier, "N-no-such-order", {"csrf_token": cashier.csrf, "out_refund_no": "R2026120314000012345678"}, "1")
    assert posted.status_code == 404 and "没有这笔订单" in posted.text
    assert refunds_count(app) == 0


def test_an_unpaid_order_shows_no_form_and_a_refund_is_refused(app, base_url, cashier):
    place_native(app, "N-refund-unpaid", 5_000)
    page = cashier.get("/console/refunds/N-refund-unpaid")
    assert page.status_code == 200 and 'id="not-paid"' in page.text and 'id="refund-form"' not in page.text
    posted = submit(cashier, "N-refund-unpaid", {"csrf_token": cashier.csrf, "out_refund_no": "R2026120314000012345678"}, "1")
    assert posted.status_code == 409 and "not paid" in posted.text
    assert refunds_count(app) == 0 and refund_audits(app) == []


def test_the_same_form_posted_twice_refunds_once(app, base_url, cashier, run_jobs):
    no = paid(app, base_url, "N-refund-twice", 10_000)
    form = the_form(cashier, no)
    first, second = submit(cashier, no, form, "100.00"), submit(cashier, no, form, "100.00")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    run_jobs()
    wait_until(lambda: refund_row(app, form["out_refund_no"]).status == "SUCCESS", "the refund settled")
    assert refunds_count(app) == 1 and len(refund_audits(app)) == 1
    assert [r["amount"]["refund"] for r in emu_refunds(base_url, no)] == [10_000]
    # the same number for another amount is not a resubmission: refused, nothing new
    changed = submit(cashier, no, form, "50.00")
    assert changed.status_code in (400, 409) and refunds_count(app) == 1


def test_the_same_form_posted_twice_at_once_refunds_once(app, base_url, cashier, run_jobs):
    no = paid(app, base_url, "N-refund-race", 10_000)
    form = the_form(cashier, no)
    start = threading.Barrier(2)
    answers: list[int] = []

    def post() -> None:
        start.wait()
        answers.append(submit(cashier, no, form, "40.00").status_code)

    posts = [threading.Thread(target=post) for _ in range(2)]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join(30)
    assert answers == [303, 303]
    run_jobs()
    assert refunds_count(app) == 1 and len(refund_audits(app)) == 1
    assert [r["amount"]["refund"] for r in emu_refunds(base_url, no)] == [4_000]


def test_each_refund_is_audited_with_the_cashier(app, base_url, cashier, run_jobs):
    no = paid(app, base_url, "N-refund-audit", 8_800)
    form = the_form(cashier, no)
    assert submit(cashier, no, form, "8.8", "少发一件").status_code == 303
    run_jobs()
    [entry] = refund_audits(app)
    assert entry.staff_id == staff_id(app, "shouyin") and entry.subject == f"order:{no}"
    assert entry.before == {"state": "PAID", "refunds_committed_fen": 0}
    assert entry.after["amount_fen"] == 880 and entry.after["out_refund_no"] == form["out_refund_no"]
    assert entry.after["reason"] == "少发一件" and entry.detail == ""


def test_today_lists_paid_orders_to_pick_from(app, base_url, cashier):
    no = paid(app, base_url, "N-refund-today", 1_000)
    place_native(app, "N-refund-today-unpaid", 2_000)
    page = cashier.get("/console/refunds/").text
    assert f'href="/console/refunds/{no}"' in page and "N-refund-today-unpaid" not in page


def test_the_form_needs_the_csrf_token(app, base_url, cashier):
    no = paid(app, base_url, "N-refund-csrf", 1_000)
    form = the_form(cashier, no)
    forged = cashier.http.post(cashier.url(f"/console/refunds/{no}"), timeout=15, allow_redirects=False,
                               data={"out_refund_no": form["out_refund_no"], "amount": "1", "reason": "x"})
    assert forged.status_code == 403 and refunds_count(app) == 0
