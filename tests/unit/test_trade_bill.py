"""The trade-bill parser (payments/bill.py) on bills written by the emulator's own bill builder,
which writes WeChat's format (backtick-prefixed fields, yuan amounts, summary and totals rows)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from payments.bill import SHANGHAI, BillFormatError, fen_to_yuan, parse_trade_bill, yuan_to_fen
from wx_service.edges.emulator.pay_bill import build_trade_bill
from wx_service.edges.emulator.pay_state import PayEmulatorState

MCHID = "1230000109"
APPID = "wx0123456789abcdef"
DAY = "2026-11-21"


def at(hour: int, minute: int = 0, day: str = DAY) -> float:
    y, m, d = map(int, day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI).timestamp()


def emulator_bill(payments: list[tuple[str, int, float]], refunds: list[tuple[str, str, int, float]],
                  day: str = DAY, description: str = "一楼化妆品") -> bytes:
    """The emulator's bill for `day`: payments (out_trade_no, fen, paid at), refunds
    (out_refund_no, out_trade_no, fen, succeeded at)."""
    pay = PayEmulatorState(platform=SimpleNamespace())  # the bill needs no platform key
    for i, (no, fen, paid_at) in enumerate(payments):
        pay.orders[f"{MCHID}/{no}"] = {
            "mchid": MCHID, "appid": APPID, "out_trade_no": no, "amount": fen, "paid_at": paid_at,
            "transaction_id": f"42000000002026112100000{i:05d}", "openid": "oPayer", "trade_type": "NATIVE",
            "description": description, "attach": ""}
    for i, (refund_no, no, fen, succeeded_at) in enumerate(refunds):
        pay.refunds[f"{MCHID}/{refund_no}"] = {
            "mchid": MCHID, "appid": APPID, "out_trade_no": no, "out_refund_no": refund_no,
            "refund": fen, "succeeded_at": succeeded_at, "refund_id": f"5030000{i:05d}",
            "transaction_id": "4200000000", "openid": "oPayer", "description": description}
    content = build_trade_bill(pay, MCHID, day, "ALL")
    assert content is not None
    return content


def lines_of(content: bytes) -> list[str]:
    return content.decode("utf-8").split("\r\n")


def bill_of(lines: list[str]) -> bytes:
    return "\r\n".join(lines).encode("utf-8")


@pytest.fixture
def sample() -> bytes:
    return emulator_bill([("T1", 1, at(9)), ("T2", 1_234_567, at(12, 30)), ("T3", 29, at(23, 59))],
                         [("R1", "T2", 1, at(15)), ("R2", "T3", 29, at(16))])


def test_the_emulators_bill_reads_to_exact_fen(sample):
    bill = parse_trade_bill(sample, bill_date=DAY)
    assert [(r.trade_state, r.out_trade_no, r.out_refund_no) for r in bill.rows] == [
        ("SUCCESS", "T1", ""), ("SUCCESS", "T2", ""), ("SUCCESS", "T3", ""),
        ("REFUND", "T2", "R1"), ("REFUND", "T3", "R2")]
    assert {no: r.order_fen for no, r in bill.payments.items()} == {"T1": 1, "T2": 1_234_567, "T3": 29}
    assert {no: r.requested_refund_fen for no, r in bill.refunds.items()} == {"R1": 1, "R2": 29}
    t2 = bill.payments["T2"]
    assert t2.settlement_fen == 1_234_567 and t2.transaction_id == "4200000000202611210000000001"
    assert t2.trade_time == datetime(2026, 11, 21, 12, 30, tzinfo=SHANGHAI)
    assert t2.appid == APPID and t2.mchid == MCHID
    assert bill.refunds["R1"].refund_id == "503000000000" and bill.refunds["R1"].refund_fen == 1
    assert bill.totals.count == 5
    assert bill.totals.order_fen == 1 + 1_234_567 + 29 and bill.totals.requested_refund_fen == 30
    # 0.6 % of 1 234 597 fen paid less 0.6 % of 30 fen refunded, in yuan
    assert bill.totals.fee == Decimal("74.07402")


@pytest.mark.parametrize("text, fen", [("0.01", 1), ("0.29", 29), ("1.10", 110), ("12345.67", 1_234_567),
                                       ("0.00", 0), ("-0.06", -6), ("99999999.99", 9_999_999_999)])
def test_yuan_become_fen_exactly(text, fen):
    assert yuan_to_fen(text) == fen
    assert fen_to_yuan(fen) == text


@pytest.mark.parametrize("text", ["1.5", "1", "1.001", "1e3", "12,345.67", " 1.00", "NaN", "", "¥1.00"])
def test_amounts_not_written_as_yuan_with_two_decimals_are_refused(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


def test_a_comma_inside_a_product_name_stays_in_its_field():
    content = emulator_bill([("T1", 500, at(10))], [], description="围巾,手套")
    assert parse_trade_bill(content).payments["T1"].order_fen == 500


def test_byte_order_mark_and_bare_newlines_are_read():
    content = b"\xef\xbb\xbf" + emulator_bill([("T1", 500, at(10))], []).replace(b"\r\n", b"\n")
    assert list(parse_trade_bill(content).payments) == ["T1"]


def _with_total(content: bytes, column: int, value: str) -> bytes:
    lines = lines_of(content)
    totals = lines[-2].split(",`")
    totals[column] = ("`" if column == 0 else "") + value
    lines[-2] = ",`".join(totals)
    return bill_of(lines)


@pytest.mark.parametrize("column, value, label", [
    (0, "6", "总交易单数"), (1, "12346.96", "应结订单总金额"), (2, "0.31", "退款总金额"),
    (4, "74.07403", "手续费总金额"), (5, "12345.96", "订单总金额"), (6, "0.29", "申请退款总金额")])
def test_a_tampered_totals_row_is_refused(sample, column, value, label):
    with pytest.raises(BillFormatError, match=label):
        parse_trade_bill(_with_total(sample, column, value))


def test_a_row_changed_without_its_totals_is_refused(sample):
    lines = lines_of(sample)
    lines[2] = lines[2].replace("`12345.67,", "`12345.66,")  # T2's 应结订单金额, totals untouched
    with pytest.raises(BillFormatError, match="应结订单总金额 12345.97, the rows add up to 12345.96"):
        parse_trade_bill(bill_of(lines))


def _edit(content: bytes, number: int, replace) -> bytes:
    lines = lines_of(content)
    lines[number - 1] = replace(lines[number - 1])
    return bill_of(lines)


@pytest.mark.parametrize("change, message", [
    (lambda b: _edit(b, 2, lambda l: l[1:]), "line 2: fields must start with a backtick"),
    (lambda b: _edit(b, 3, lambda l: l.rsplit(",`", 1)[0]), "line 3: 26 fields where the header has 27"),
    (lambda b: _edit(b, 2, lambda l: l.replace("`SUCCESS", "`REVOKED")), "line 2: 交易状态 'REVOKED'"),
    (lambda b: _edit(b, 2, lambda l: l.replace(f"`{DAY} 09:00:00", "`2026/11/21 9:00")), "line 2, 交易时间"),
    (lambda b: _edit(b, 4, lambda l: l.replace("`0.29,", "`0.290,", 1)), "line 4, 应结订单金额"),
    (lambda b: _edit(b, 5, lambda l: l.replace("`R1", "`0")), "line 5: a REFUND row without 商户退款单号"),
    (lambda b: _edit(b, 1, lambda l: l.replace("商户订单号", "订单号")), "line 1: the header lacks 商户订单号"),
    (lambda b: b.replace("总交易单数".encode(), b"summary"), "no summary header"),
    (lambda b: b + b"`1,`2\r\n", "exactly one totals row, found 2"),
    (lambda b: _edit(b, 3, lambda l: ""), "line 3: empty line"),
    (lambda b: b.replace("一楼化妆品".encode(), "一楼化妆品".encode("gbk")), "not UTF-8"),
    (lambda b: b"\r\n\r\n", "the bill is empty"),
])
def test_malformed_bills_are_refused_with_the_line_and_reason(sample, change, message):
    with pytest.raises(BillFormatError, match=message):
        parse_trade_bill(change(sample))


def test_a_payment_listed_twice_is_refused():
    content = emulator_bill([("T1", 500, at(10))], [])
    lines = lines_of(content)
    lines.insert(2, lines[1])
    with pytest.raises(BillFormatError, match=r"line 3: T1 is listed twice as SUCCESS \(also line 2\)"):
        parse_trade_bill(bill_of(lines))


def test_a_row_of_another_day_is_refused_when_the_date_is_given():
    content = emulator_bill([("T1", 500, at(10)), ("T2", 700, at(0, 5, day="2026-11-22"))], [])
    # the emulator only lists the day asked for; move T1 to the next day by hand
    assert list(parse_trade_bill(content).payments) == ["T1"]
    moved = content.replace(f"`{DAY} 10:00:00".encode(), b"`2026-11-22 10:00:00")
    assert parse_trade_bill(moved).payments["T1"].trade_time.day == 22
    with pytest.raises(BillFormatError, match="line 2: dated 2026-11-22, the bill is for 2026-11-21"):
        parse_trade_bill(moved, bill_date=DAY)
