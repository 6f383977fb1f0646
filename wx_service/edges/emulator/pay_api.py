"""The emulator playing WeChat Pay API v3 (reference §10) and the paying shopper.

Mounted at /_emulator/pay, so a gateway with api_base `<host>/_emulator/pay` talks to it exactly
as to https://api.mch.weixin.qq.com (the signed URL is the path it received, prefix included).

WeChat's side (every call: faults first, then the merchant's Authorization is verified with the
public key registered for its mchid, 401 SIGN_ERROR otherwise; every answer is signed with the
platform key, Wechatpay-* headers over the raw body, 204 over the empty body):
  POST /v3/pay/transactions/{native,jsapi,codepay}, GET …/out-trade-no/{no}?mchid=,
  GET …/id/{transaction_id}?mchid=, POST …/out-trade-no/{no}/close (204),
  POST …/out-trade-no/{no}/reverse, POST /v3/refund/domestic/refunds,
  GET /v3/refund/domestic/refunds/{no}, GET /v3/bill/tradebill, GET /v3/billdownload/file
  (unsigned, as WeChat's bill files), GET /v3/certificates (encrypted with the APIv3 key).
Errors: 400 PARAM_ERROR / INVALID_REQUEST, 401 SIGN_ERROR, 403 OUT_TRADE_NO_USED / NOTENOUGH /
TRADE_ERROR, 404 ORDER_NOT_EXIST, 202 USERPAYING, 500 SYSTEM_ERROR (by fault injection).

The package: pay_api.py (WeChat's endpoints, signing, the merchant check), pay_orders.py (order and
refund book-keeping, the shopper finishing a code), pay_notifications.py (signed, encrypted,
retried notifications), pay_bill.py (the bill text), pay_control.py (the endpoints below),
pay_state.py (what it remembers; EmulatorState.pay).

Control endpoints (POST JSON under /_emulator/pay/control/, pay_control.py):
  merchant     {mchid, appid or appids (the apps bound to the merchant), serial_no,
               public_key (PEM), apiv3_key}
  config       {notify_time_factor, refund_settle_seconds, codepay_auto_revoke_seconds (45)}
  faults       {api, status?, code?, message?, delay?, tamper?, unsigned?, extra?, times?}
               api: native jsapi codepay query close reverse refund refund_query tradebill
               billdownload certificates, or "*"
  rotate-certificate   a new platform certificate signs from now on
  pay          {out_trade_no | code_url | prepay_id, openid?}: the shopper pays
  payment-code {openid?, seconds, outcome: pay|give_up|notenough} -> {auth_code}: the shopper
               shows an 18-digit code (10-15…); submitted, it is USERPAYING (202) for `seconds`
               (0: answers at once), then paid, or abandoned (give_up: the order stays
               USERPAYING until reversed; reverse while the shopper is still typing answers
               202 USERPAYING, "正在支付中不能发起撤销"). An order still unpaid
               codepay_auto_revoke_seconds after creation is REVOKED, as WeChat does at 45 s.
  settle-refund {out_refund_no}: a PROCESSING refund turns SUCCESS now (and is notified)
  GET state    orders, refunds, notifications, calls

Notifications (TRANSACTION.SUCCESS, REFUND.SUCCESS) go to the order's notify_url, signed, the
resource encrypted with the APIv3 key; a non-2xx or no answer within 5 s is retried on WeChat's
schedule 15s/15s/30s/3m/10m/… (§10.4) divided by notify_time_factor.

Trade bill format (what WeChat's v2/v3 trade bill looks like, UTF-8, lines ending \\r\\n):
  line 1: the column names 交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,
          用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,
          商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,
          费率,订单金额,申请退款金额,费率备注
  then one row per paid order (交易状态 SUCCESS) and per successful refund (交易状态 REFUND) whose
  time falls on bill_date in Beijing time, every field prefixed with a backtick, amounts in yuan
  with two decimals, fee at 0.6 % with five decimals;
  then 总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
  and one backtick-prefixed row of totals. hash_value is the SHA1 of exactly these bytes.
"""
from __future__ import annotations

import functools
import hashlib
import json
import secrets
import threading
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request

from payments.exceptions import SignatureInvalid, WxPayError
from payments.wxpay_v3 import (
    build_request_message,
    build_verify_message,
    check_fresh,
    encrypt_resource,
    new_nonce,
    parse_authorization,
    sign,
    verify_signature,
)
from wx_service.edges.emulator import shapes
from wx_service.edges.emulator.api import shaped
from wx_service.edges.emulator.pay_bill import build_trade_bill
from wx_service.edges.emulator.pay_control import bp as control_bp
from wx_service.edges.emulator.pay_orders import (
    _emu,
    _key,
    _now_text,
    _order,
    _pay,
    _refund_view,
    _settle_code,
    _settle_later,
    _settle_refund,
    _transaction,
)
from wx_service.edges.emulator.pay_state import SHANGHAI, PayFault
from wx_service.ground.validation import BadShape

bp = Blueprint("emulator_pay", __name__)
bp.register_blueprint(control_bp)  # /_emulator/pay/control/…

ERROR_STATUS = {
    "USERPAYING": 202, "PARAM_ERROR": 400, "INVALID_REQUEST": 400, "SIGN_ERROR": 401,
    "NOAUTH": 403, "OUT_TRADE_NO_USED": 403, "NOTENOUGH": 403, "RULE_LIMIT": 403,
    "TRADE_ERROR": 403, "ORDER_NOT_EXIST": 404, "RESOURCE_NOT_EXISTS": 404,
    "FREQUENCY_LIMITED": 429, "SYSTEM_ERROR": 500,
}
MESSAGES = {
    "USERPAYING": "需要用户输入支付密码", "SIGN_ERROR": "签名错误", "ORDER_NOT_EXIST": "订单不存在",
    "OUT_TRADE_NO_USED": "商户订单号重复", "NOTENOUGH": "余额不足", "SYSTEM_ERROR": "系统错误",
}


# --- signed answers ----------------------------------------------------------------------------


def _signed(status: int, payload: dict[str, Any] | None, fault: PayFault | None = None) -> Response:
    pay = _pay()
    if payload is not None and fault is not None and fault.extra:
        payload = {**payload, **fault.extra}
    body = b"" if payload is None else json.dumps(payload, ensure_ascii=False,
                                                   separators=(",", ":")).encode("utf-8")
    platform = pay.current
    ts, nonce = str(int(time.time())), new_nonce()
    headers = {
        "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": platform.serial,
        "Wechatpay-Signature": sign(platform.key, build_verify_message(ts, nonce, body)),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Request-ID": secrets.token_hex(20).upper(),
    }
    if fault is not None and fault.tamper:  # altered after signing, as a man in the middle would
        data = json.loads(body) if body else {}
        data["tampered"] = True
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if fault is not None and fault.unsigned:
        headers.pop("Wechatpay-Signature")
    response = Response(body, status=status, headers=headers)
    if body:
        response.mimetype = "application/json"
    return response


def _err(code: str, message: str = "", fault: PayFault | None = None, status: int | None = None,
         **extra: Any) -> Response:
    payload: dict[str, Any] = {"code": code, "message": message or MESSAGES.get(code, code)}
    payload.update(extra)
    return _signed(status or ERROR_STATUS.get(code, 400), payload, fault)


def _merchant() -> tuple[dict[str, Any] | None, Response | None]:
    """Verify the merchant's Authorization over METHOD, path?query, timestamp, nonce, raw body."""
    pay = _pay()
    header = request.headers.get("Authorization", "")
    try:
        items = parse_authorization(header)
        merchant = pay.merchants.get(items["mchid"])
        if merchant is None:
            raise SignatureInvalid("unknown mchid")
        if items["serial_no"].upper() != merchant["serial_no"].upper():
            raise SignatureInvalid("serial_no is not the merchant's certificate serial")
        check_fresh(items["timestamp"])
        url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        message = build_request_message(request.method, url, items["timestamp"], items["nonce_str"],
                                        request.get_data())
        verify_signature(merchant["public_key"], message, items["signature"])
    except WxPayError as exc:
        url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        return None, _err("SIGN_ERROR", f"签名错误: {exc}", sign_information={
            "method": request.method, "url": url,
            "truncated_sign_message": f"{request.method}\n{url}\n"[:64]})
    return merchant, None


def pay_api(api: str):
    """Faults first (a flaky WeChat), then the merchant's signature; the view gets (merchant, fault)."""
    def wrap(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            pay = _pay()
            with _emu().lock:
                pay.calls[api] = pay.calls.get(api, 0) + 1
                fault = pay.take_fault(api)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.code:
                return _err(fault.code, fault.message, fault, fault.status)
            merchant, refused = _merchant()
            if refused is not None:
                return refused
            try:
                return view(merchant, fault, *args, **kwargs)
            except BadShape as exc:
                return _err("PARAM_ERROR", f"输入源“/body/{exc.field.replace('.', '/')}”{exc.problem}", fault,
                            detail={"field": exc.field, "location": "body"})
        return wrapped
    return wrap



def _new_order(merchant: dict[str, Any], fault: PayFault | None, trade_type: str) -> Response:
    body = shaped(shapes.PayNewOrder)
    total = body["amount"]["total"]
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
        if not isinstance(body.get(name), str) or not body.get(name):
            return _err("PARAM_ERROR", f"缺少参数 {name}", fault,
                        detail={"field": name, "location": "body"})
    if total <= 0:
        return _err("PARAM_ERROR", "amount.total 必须为正整数（分）", fault,
                    detail={"field": "amount.total", "location": "body"})
    if body["mchid"] != merchant["mchid"] or body["appid"] not in merchant["appids"]:
        return _err("PARAM_ERROR", "appid 和 mchid 不匹配", fault)
    openid = None
    if trade_type == "JSAPI":
        openid = (body.get("payer") or {}).get("openid")
        if not openid:
            return _err("PARAM_ERROR", "缺少参数 payer.openid", fault)
    state = _emu()
    with state.lock:
        existing = state.pay.orders.get(_key(merchant["mchid"], body["out_trade_no"]))
        if existing is not None:
            if existing["request"] == body and existing["trade_state"] == "NOTPAY":
                return _signed(200, existing["answer"], fault)  # same request, same answer
            return _err("OUT_TRADE_NO_USED", fault=fault)
        order = {"mchid": merchant["mchid"], "appid": body["appid"], "out_trade_no": body["out_trade_no"],
                 "trade_type": trade_type, "trade_state": "NOTPAY", "trade_state_desc": "未支付",
                 "description": body["description"], "attach": body.get("attach", ""),
                 "amount": total, "notify_url": body["notify_url"], "openid": openid,
                 "created_at": time.time(), "request": body, "refunded": 0}
        if trade_type == "NATIVE":
            order["code_url"] = "weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(7)[:9]
            order["answer"] = {"code_url": order["code_url"]}
        else:
            order["prepay_id"] = "wx" + datetime.now(SHANGHAI).strftime("%d%H%M%S") + secrets.token_hex(12)
            order["answer"] = {"prepay_id": order["prepay_id"]}
        state.pay.orders[_key(merchant["mchid"], body["out_trade_no"])] = order
        return _signed(200, order["answer"], fault)


@bp.post("/v3/pay/transactions/native")
@pay_api("native")
def native(merchant, fault):
    return _new_order(merchant, fault, "NATIVE")


@bp.post("/v3/pay/transactions/jsapi")
@pay_api("jsapi")
def jsapi(merchant, fault):
    return _new_order(merchant, fault, "JSAPI")


@bp.post("/v3/pay/transactions/codepay")
@pay_api("codepay")
def codepay(merchant, fault):
    body = shaped(shapes.PayCodepay)
    auth_code = body["payer"].get("auth_code") or ""
    total = body["amount"]["total"]
    if not body["out_trade_no"] or not body["description"] or total <= 0:
        return _err("PARAM_ERROR", "缺少参数", fault)
    if body.get("mchid") != merchant["mchid"] or body.get("appid") not in merchant["appids"]:
        return _err("PARAM_ERROR", "appid 和 mchid 不匹配", fault)
    if not (len(auth_code) == 18 and auth_code.isdigit() and auth_code[:2] in {"10", "11", "12", "13", "14", "15"}):
        return _err("PARAM_ERROR", "付款码格式错误", fault, detail={"field": "payer.auth_code"})
    state = _emu()
    with state.lock:
        key = _key(merchant["mchid"], body["out_trade_no"])
        if key in state.pay.orders:
            return _err("OUT_TRADE_NO_USED", fault=fault)
        code = state.pay.codes.get(auth_code)
        if code is None or code["used"]:
            return _err("INVALID_REQUEST", "付款码无效，请重新扫码", fault, status=400)
        code["used"] = True
        if code["outcome"] == "notenough":
            return _err("NOTENOUGH", fault=fault)
        order = {"mchid": merchant["mchid"], "appid": body["appid"], "out_trade_no": body["out_trade_no"],
                 "trade_type": "MICROPAY", "trade_state": "USERPAYING", "trade_state_desc": "需要用户输入支付密码",
                 "description": body["description"], "attach": body.get("attach", ""), "amount": total,
                 "notify_url": body.get("notify_url"), "openid": code["openid"], "created_at": time.time(),
                 "request": body, "refunded": 0, "paying_until": time.time() + code["seconds"],
                 "outcome": code["outcome"], "auth_code": auth_code}
        state.pay.orders[key] = order
        _settle_code(state, order)
        if order["trade_state"] == "SUCCESS":
            return _signed(200, _transaction(order), fault)
        if code["seconds"] > 0:
            timer = threading.Timer(code["seconds"], _settle_later, (state, key))
            timer.daemon = True
            state.pay.timers.append(timer)
            timer.start()
        return _err("USERPAYING", fault=fault)



@bp.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
@pay_api("query")
def query(merchant, fault, out_trade_no: str):
    if request.args.get("mchid") != merchant["mchid"]:
        return _err("PARAM_ERROR", "缺少参数 mchid", fault)
    with _emu().lock:
        order = _order(merchant["mchid"], out_trade_no)
        if order is None:
            return _err("ORDER_NOT_EXIST", fault=fault)
        return _signed(200, _transaction(order), fault)


@bp.get("/v3/pay/transactions/id/<transaction_id>")
@pay_api("query")
def query_by_id(merchant, fault, transaction_id: str):
    if request.args.get("mchid") != merchant["mchid"]:
        return _err("PARAM_ERROR", "缺少参数 mchid", fault)
    with _emu().lock:
        for order in _pay().orders.values():
            if order.get("transaction_id") == transaction_id and order["mchid"] == merchant["mchid"]:
                return _signed(200, _transaction(order), fault)
        return _err("ORDER_NOT_EXIST", fault=fault)


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
@pay_api("close")
def close(merchant, fault, out_trade_no: str):
    if shaped(shapes.PayClose)["mchid"] != merchant["mchid"]:
        return _err("PARAM_ERROR", "缺少参数 mchid", fault)
    with _emu().lock:
        order = _order(merchant["mchid"], out_trade_no)
        if order is None:
            return _err("ORDER_NOT_EXIST", fault=fault)
        if order["trade_state"] in ("SUCCESS", "REFUND"):
            return _err("TRADE_ERROR", "订单已支付", fault)
        if order["trade_state"] == "NOTPAY":
            order.update(trade_state="CLOSED", trade_state_desc="已关闭")
        return _signed(204, None, fault)


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/reverse")
@pay_api("reverse")
def reverse(merchant, fault, out_trade_no: str):
    body = shaped(shapes.PayReverse)
    if body.get("mchid") != merchant["mchid"] or body.get("appid") not in merchant["appids"]:
        return _err("PARAM_ERROR", "缺少参数 appid/mchid", fault)
    with _emu().lock:
        order = _order(merchant["mchid"], out_trade_no)
        if order is None:
            return _err("ORDER_NOT_EXIST", fault=fault)
        if order["trade_type"] != "MICROPAY":
            return _err("TRADE_ERROR", "非付款码订单不能撤销", fault)
        if order["trade_state"] == "USERPAYING" and not order.get("abandoned"):
            return _err("USERPAYING", "正在支付中不能发起撤销", fault)
        if order["trade_state"] in ("SUCCESS", "USERPAYING", "NOTPAY", "PAYERROR"):
            order.update(trade_state="REVOKED", trade_state_desc="已撤销")
        return _signed(200, {"appid": order["appid"], "mchid": order["mchid"],
                             "out_trade_no": order["out_trade_no"]}, fault)



@bp.post("/v3/refund/domestic/refunds")
@pay_api("refund")
def refund(merchant, fault):
    body = shaped(shapes.PayRefund)
    refund_fen, total = body["amount"]["refund"], body["amount"]["total"]
    if not body.get("out_refund_no") or not (body.get("out_trade_no") or body.get("transaction_id")):
        return _err("PARAM_ERROR", "缺少参数 out_refund_no / out_trade_no", fault)
    if refund_fen <= 0 or total <= 0:
        return _err("PARAM_ERROR", "amount.refund / amount.total 必须为正整数（分）", fault)
    state = _emu()
    with state.lock:
        pay = state.pay
        order = _order(merchant["mchid"], str(body.get("out_trade_no", "")))
        if order is None:
            return _err("ORDER_NOT_EXIST", fault=fault)
        existing = pay.refunds.get(_key(merchant["mchid"], body["out_refund_no"]))
        if existing is not None:
            if existing["request"] == body:
                return _signed(200, _refund_view(existing), fault)
            return _err("INVALID_REQUEST", "退款单号重复但参数不一致", fault)
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return _err("TRADE_ERROR", "订单未支付，不能退款", fault)
        if total != order["amount"]:
            return _err("PARAM_ERROR", "订单金额与原订单不一致", fault)
        if order["refunded"] + refund_fen > order["amount"]:
            return _err("INVALID_REQUEST", "申请退款金额超过订单可退金额", fault)
        order["refunded"] += refund_fen
        order.update(trade_state="REFUND", trade_state_desc="转入退款")
        refund_row = {
            "request": body, "mchid": merchant["mchid"], "refund_id": "50" + "".join(
                str(secrets.randbelow(10)) for _ in range(27)),
            "out_refund_no": body["out_refund_no"], "transaction_id": order["transaction_id"],
            "out_trade_no": order["out_trade_no"], "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": _now_text(), "status": "PROCESSING",
            "funds_account": "AVAILABLE", "total": total, "refund": refund_fen,
            "notify_url": body.get("notify_url"), "created_at": time.time(),
            "description": order["description"], "openid": order["openid"], "appid": order["appid"],
        }
        pay.refunds[_key(merchant["mchid"], body["out_refund_no"])] = refund_row
        timer = threading.Timer(pay.refund_settle_seconds, _settle_refund,
                                (state, _key(merchant["mchid"], body["out_refund_no"]), pay.generation))
        timer.daemon = True
        pay.timers.append(timer)
        timer.start()
        return _signed(200, _refund_view(refund_row), fault)



@bp.get("/v3/refund/domestic/refunds/<out_refund_no>")
@pay_api("refund_query")
def refund_query(merchant, fault, out_refund_no: str):
    with _emu().lock:
        refund_row = _pay().refunds.get(_key(merchant["mchid"], out_refund_no))
        if refund_row is None:
            return _err("RESOURCE_NOT_EXISTS", "退款单不存在", fault)
        return _signed(200, _refund_view(refund_row), fault)



# --- platform certificates ---------------------------------------------------------------------


@bp.get("/v3/certificates")
@pay_api("certificates")
def certificates(merchant, fault):
    data = []
    for platform in _pay().platform:
        sealed = encrypt_resource(merchant["apiv3_key"], platform.pem, associated_data="certificate",
                                  original_type="certificate")
        sealed.pop("original_type")
        data.append({"serial_no": platform.serial,
                     "effective_time": platform.cert.not_valid_before_utc.astimezone(SHANGHAI).isoformat(),
                     "expire_time": platform.cert.not_valid_after_utc.astimezone(SHANGHAI).isoformat(),
                     "encrypt_certificate": sealed})
    return _signed(200, {"data": data}, fault)



@bp.get("/v3/bill/tradebill")
@pay_api("tradebill")
def tradebill(merchant, fault):
    bill_date = request.args.get("bill_date", "")
    bill_type = request.args.get("bill_type", "ALL")
    try:
        datetime.strptime(bill_date, "%Y-%m-%d")
    except ValueError:
        return _err("PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD", fault)
    if bill_type not in ("ALL", "SUCCESS", "REFUND"):
        return _err("PARAM_ERROR", "bill_type 无效", fault)
    with _emu().lock:
        content = build_trade_bill(_pay(), merchant["mchid"], bill_date, bill_type)
        if content is None:
            return _err("NO_STATEMENT_EXIST", "账单不存在", fault, status=400)
        token = secrets.token_urlsafe(24)
        _pay().bills[token] = content
    download_url = request.host_url.rstrip("/") + bp_prefix() + f"/v3/billdownload/file?token={token}"
    return _signed(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                         "download_url": download_url}, fault)


def bp_prefix() -> str:
    """The mount point of this blueprint (…/_emulator/pay), read from the matched rule."""
    rule = request.url_rule.rule if request.url_rule else ""
    return rule[: rule.index("/v3/")] if "/v3/" in rule else ""


@bp.get("/v3/billdownload/file")
@pay_api("billdownload")
def billdownload(merchant, fault):
    content = _pay().bills.get(request.args.get("token", ""))
    if content is None:
        return _err("RESOURCE_NOT_EXISTS", "下载链接无效或已过期", fault)
    if fault is not None and fault.tamper:
        content = content.replace(b"`", b"'", 1)
    return Response(content, status=200, mimetype="text/plain")  # bill files are not signed

