"""WeChat Pay's trade bill (交易账单): text in, typed rows out, checked against its own totals.

Pure: no database, no network. The format (what WeChat sends and the emulator's pay_bill.py
writes): UTF-8, lines ending \\r\\n; a header line of column names; one row per payment
(交易状态 SUCCESS) and per refund (交易状态 REFUND), every field prefixed with a backtick (so a
spreadsheet keeps long numbers as text); then the summary header (总交易单数,…) and one row of
totals. Columns are found by name, so WeChat adding one does not shift the others.

Amounts are yuan with exactly two decimals and become integer fen by string arithmetic: going
through float would sooner or later turn 0.29 yuan into 28 fen. The fee has five decimals and
stays a Decimal (it is WeChat's charge, not money we hold). A bill that does not add up, or that
has a line we cannot read, is refused whole (BillFormatError): comparing half a bill would report
differences that are not there and hide ones that are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the bill's times are Beijing time

PAYMENT = "SUCCESS"
REFUND = "REFUND"

# column name -> BillRow attribute (the columns we use; others are allowed and ignored)
COLUMNS = {
    "交易时间": "trade_time", "公众账号ID": "appid", "商户号": "mchid", "微信订单号": "transaction_id",
    "商户订单号": "out_trade_no", "交易类型": "trade_type", "交易状态": "trade_state",
    "应结订单金额": "settlement_fen", "代金券金额": "coupon_fen", "微信退款单号": "refund_id",
    "商户退款单号": "out_refund_no", "退款金额": "refund_fen", "充值券退款金额": "recharge_refund_fen",
    "退款状态": "refund_status", "手续费": "fee", "订单金额": "order_fen",
    "申请退款金额": "requested_refund_fen",
}
FEN_COLUMNS = ("应结订单金额", "代金券金额", "退款金额", "充值券退款金额", "订单金额", "申请退款金额")

# summary column -> the row column it adds up (None: the number of rows)
SUMMARY = {
    "总交易单数": None, "应结订单总金额": "应结订单金额", "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额", "手续费总金额": "手续费", "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
}

_YUAN = re.compile(r"^(-?)(\d+)\.(\d{2})$")
_FEE = re.compile(r"^-?\d+(\.\d{1,6})?$")


class BillFormatError(ValueError):
    """The bill cannot be read or does not add up; the message says where and why."""


@dataclass(frozen=True)
class BillRow:
    """One payment or refund line. Amounts in fen; `line` is the 1-based line in the file."""

    line: int
    trade_time: datetime
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    trade_type: str
    trade_state: str  # SUCCESS (a payment) or REFUND (a refund)
    settlement_fen: int  # 应结订单金额: what the payment settles (order total less coupons)
    coupon_fen: int
    refund_id: str
    out_refund_no: str
    refund_fen: int  # 退款金额: what was refunded (settlement)
    recharge_refund_fen: int
    refund_status: str
    fee: Decimal  # yuan, five decimals; negative on refunds
    order_fen: int  # 订单金额: the order total we asked for
    requested_refund_fen: int  # 申请退款金额: the refund we asked for

    @property
    def is_refund(self) -> bool:
        return self.trade_state == REFUND


@dataclass(frozen=True)
class BillTotals:
    count: int
    settlement_fen: int
    refund_fen: int
    recharge_refund_fen: int
    fee: Decimal
    order_fen: int
    requested_refund_fen: int


@dataclass(frozen=True)
class TradeBill:
    rows: tuple[BillRow, ...]
    totals: BillTotals

    @property
    def payments(self) -> dict[str, BillRow]:
        """SUCCESS rows by out_trade_no."""
        return {r.out_trade_no: r for r in self.rows if not r.is_refund}

    @property
    def refunds(self) -> dict[str, BillRow]:
        """REFUND rows by out_refund_no."""
        return {r.out_refund_no: r for r in self.rows if r.is_refund}


EMPTY_BILL = TradeBill((), BillTotals(0, 0, 0, 0, Decimal("0"), 0, 0))


def yuan_to_fen(text: str) -> int:
    """'12345.67' -> 1234567, exactly. Anything but yuan with two decimals is refused."""
    match = _YUAN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an amount in yuan with two decimals")
    sign, whole, cents = match.groups()
    fen = int(whole) * 100 + int(cents)
    return -fen if sign else fen


def fen_to_yuan(fen: int) -> str:
    """1234567 -> '12345.67' (for reports; integer arithmetic, no float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _fields(line: str, number: int) -> list[str]:
    """A data line's fields: each starts with a backtick, so split on ',`' (a comma inside a
    product name stays in its field)."""
    if not line.startswith("`"):
        raise BillFormatError(f"line {number}: fields must start with a backtick: {line[:60]!r}")
    return line[1:].split(",`")


def _names(line: str) -> list[str]:
    return [name.strip().lstrip("`").strip() for name in line.split(",")]


def _index(names: list[str], wanted, what: str, number: int) -> dict[str, int]:
    if len(set(names)) != len(names):
        raise BillFormatError(f"line {number}: the {what} names a column twice")
    missing = [name for name in wanted if name not in names]
    if missing:
        raise BillFormatError(f"line {number}: the {what} lacks {', '.join(missing)}")
    return {name: names.index(name) for name in wanted}


def _amount(value: str, column: str, number: int) -> int:
    try:
        return yuan_to_fen(value)
    except ValueError as exc:
        raise BillFormatError(f"line {number}, {column}: {exc}") from None


def _fee(value: str, column: str, number: int) -> Decimal:
    if not _FEE.match(value):
        raise BillFormatError(f"line {number}, {column}: {value!r} is not an amount")
    return Decimal(value)


def _row(fields: list[str], at: dict[str, int], width: int, number: int) -> BillRow:
    if len(fields) != width:
        raise BillFormatError(f"line {number}: {len(fields)} fields where the header has {width}")
    raw = {attr: fields[at[name]].strip() for name, attr in COLUMNS.items()}
    try:
        when = datetime.strptime(raw["trade_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise BillFormatError(f"line {number}, 交易时间: {raw['trade_time']!r} is not "
                              "YYYY-MM-DD HH:MM:SS") from None
    values: dict = {**raw, "line": number, "trade_time": when}
    for name in FEN_COLUMNS:
        values[COLUMNS[name]] = _amount(raw[COLUMNS[name]], name, number)
    values["fee"] = _fee(raw["fee"], "手续费", number)
    state = raw["trade_state"]
    if state == PAYMENT:
        values["refund_id"] = values["out_refund_no"] = ""  # WeChat writes "0" there
        needed = ("out_trade_no", "transaction_id")
    elif state == REFUND:
        needed = ("out_trade_no", "out_refund_no", "refund_id")
    else:
        raise BillFormatError(f"line {number}: 交易状态 {state!r} is neither SUCCESS nor REFUND")
    for attr in needed:
        if values[attr] in ("", "0"):
            name = next(n for n, a in COLUMNS.items() if a == attr)
            raise BillFormatError(f"line {number}: a {state} row without {name}")
    return BillRow(**values)


def _check_totals(rows: list[BillRow], totals: BillTotals, number: int) -> None:
    added = BillTotals(
        count=len(rows),
        settlement_fen=sum(r.settlement_fen for r in rows),
        refund_fen=sum(r.refund_fen for r in rows),
        recharge_refund_fen=sum(r.recharge_refund_fen for r in rows),
        fee=sum((r.fee for r in rows), Decimal("0")),
        order_fen=sum(r.order_fen for r in rows),
        requested_refund_fen=sum(r.requested_refund_fen for r in rows),
    )
    labels = {"count": "总交易单数", "settlement_fen": "应结订单总金额", "refund_fen": "退款总金额",
              "recharge_refund_fen": "充值券退款总金额", "fee": "手续费总金额",
              "order_fen": "订单总金额", "requested_refund_fen": "申请退款总金额"}
    for attr, label in labels.items():
        said, found = getattr(totals, attr), getattr(added, attr)
        if said != found:
            if attr.endswith("_fen"):
                said, found = fen_to_yuan(said), fen_to_yuan(found)
            raise BillFormatError(f"line {number}: the totals row says {label} {said}, "
                                  f"the rows add up to {found}")


def parse_trade_bill(content: bytes, *, bill_date: str | None = None) -> TradeBill:
    """Read a trade bill. With `bill_date` (YYYY-MM-DD), every row must fall on that Beijing day.
    Raises BillFormatError naming the line and the reason."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BillFormatError(f"the bill is not UTF-8 (byte {exc.start})") from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BillFormatError("the bill is empty")
    names = _names(lines[0])
    at = _index(names, COLUMNS, "header", 1)
    summary_at = next((i for i, line in enumerate(lines) if i > 0 and _names(line)[0] == "总交易单数"),
                      None)
    if summary_at is None:
        raise BillFormatError("the bill has no summary header (总交易单数,…)")
    if len(lines) != summary_at + 2:
        raise BillFormatError(f"line {summary_at + 1}: the summary header must be followed by "
                              f"exactly one totals row, found {len(lines) - summary_at - 1}")

    rows: list[BillRow] = []
    seen: dict[tuple[str, str], int] = {}
    for i in range(1, summary_at):
        number = i + 1
        if not lines[i].strip():
            raise BillFormatError(f"line {number}: empty line inside the bill")
        row = _row(_fields(lines[i], number), at, len(names), number)
        if bill_date is not None and row.trade_time.strftime("%Y-%m-%d") != bill_date:
            raise BillFormatError(f"line {number}: dated {row.trade_time:%Y-%m-%d}, the bill is "
                                  f"for {bill_date}")
        key = (row.trade_state, row.out_refund_no if row.is_refund else row.out_trade_no)
        if key in seen:
            raise BillFormatError(f"line {number}: {key[1]} is listed twice as {key[0]} "
                                  f"(also line {seen[key]})")
        seen[key] = number
        rows.append(row)

    summary_names = _names(lines[summary_at])
    summary_index = _index(summary_names, SUMMARY, "summary header", summary_at + 1)
    number = summary_at + 2
    fields = _fields(lines[summary_at + 1], number)
    if len(fields) != len(summary_names):
        raise BillFormatError(f"line {number}: {len(fields)} totals where the summary header "
                              f"has {len(summary_names)}")
    value = {name: fields[summary_index[name]].strip() for name in SUMMARY}
    if not value["总交易单数"].isdigit():
        raise BillFormatError(f"line {number}, 总交易单数: {value['总交易单数']!r} is not a count")
    totals = BillTotals(
        count=int(value["总交易单数"]),
        settlement_fen=_amount(value["应结订单总金额"], "应结订单总金额", number),
        refund_fen=_amount(value["退款总金额"], "退款总金额", number),
        recharge_refund_fen=_amount(value["充值券退款总金额"], "充值券退款总金额", number),
        fee=_fee(value["手续费总金额"], "手续费总金额", number),
        order_fen=_amount(value["订单总金额"], "订单总金额", number),
        requested_refund_fen=_amount(value["申请退款总金额"], "申请退款总金额", number),
    )
    _check_totals(rows, totals, number)
    return TradeBill(tuple(rows), totals)
