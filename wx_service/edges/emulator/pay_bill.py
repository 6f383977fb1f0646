"""The emulated trade bill (GET /v3/bill/tradebill then the download): the text WeChat's trade
bill has, described in pay_api.py's docstring. Pure: built from the emulator's orders and refunds."""
from __future__ import annotations

from datetime import datetime

from wx_service.edges.emulator.pay_state import SHANGHAI, PayEmulatorState

# --- bills -------------------------------------------------------------------------------------

BILL_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
                "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
                "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
BILL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FEE_RATE = 0.006


def _yuan(fen: int | float, places: int = 2) -> str:
    return f"{fen / 100:.{places}f}"


def _row(fields: list[str]) -> str:
    return ",".join("`" + f for f in fields)


def build_trade_bill(pay: PayEmulatorState, mchid: str, bill_date: str, bill_type: str) -> bytes | None:
    """The bill text (module docstring), or None when nothing happened that day."""
    rows: list[str] = []
    paid_total = refund_total = fee_total = 0.0
    count = 0
    day = lambda ts: datetime.fromtimestamp(ts, SHANGHAI).strftime("%Y-%m-%d")  # noqa: E731
    stamp = lambda ts: datetime.fromtimestamp(ts, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    if bill_type in ("ALL", "SUCCESS"):
        for order in pay.orders.values():
            if order["mchid"] != mchid or not order.get("paid_at") or day(order["paid_at"]) != bill_date:
                continue
            fee = order["amount"] * FEE_RATE
            rows.append(_row([stamp(order["paid_at"]), order["appid"], mchid, "0", "",
                              order["transaction_id"], order["out_trade_no"], order["openid"],
                              order["trade_type"], "SUCCESS", "OTHERS", "CNY", _yuan(order["amount"]),
                              "0.00", "0", "0", "0.00", "0.00", "", "", order["description"],
                              order.get("attach", ""), _yuan(fee, 5), "0.60%", _yuan(order["amount"]),
                              "0.00", ""]))
            count += 1
            paid_total += order["amount"]
            fee_total += fee
    if bill_type in ("ALL", "REFUND"):
        for row in pay.refunds.values():
            if row["mchid"] != mchid or not row.get("succeeded_at") or day(row["succeeded_at"]) != bill_date:
                continue
            fee = -row["refund"] * FEE_RATE
            rows.append(_row([stamp(row["succeeded_at"]), row["appid"], mchid, "0", "",
                              row["transaction_id"], row["out_trade_no"], row["openid"], "", "REFUND",
                              "OTHERS", "CNY", "0.00", "0.00", row["refund_id"], row["out_refund_no"],
                              _yuan(row["refund"]), "0.00", "ORIGINAL", "SUCCESS", row["description"],
                              "", _yuan(fee, 5), "0.60%", "0.00", _yuan(row["refund"]), ""]))
            count += 1
            refund_total += row["refund"]
            fee_total += fee
    if not rows:
        return None
    lines = [BILL_COLUMNS, *rows, BILL_SUMMARY,
             _row([str(count), _yuan(paid_total), _yuan(refund_total), "0.00", _yuan(fee_total, 5),
                   _yuan(paid_total), _yuan(refund_total)])]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")

