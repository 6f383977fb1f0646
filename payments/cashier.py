"""The cashier's payment-code (付款码) flow: scan, submit, query, reverse, driven by jobs.

`start_codepay` (the till's request) writes the order and queues `advance_codepay`. Each run of
that job reads WeChat's stored answers under the order row lock, asks the pure schedule
(payments.codepay.next_step) what to do, does at most the steps that are due now, and queues
itself again for the next one. Every WeChat answer is committed as a CodepayAnswer row before
anything acts on it, and `submitted_at` is committed before the submit leaves, so a worker killed
anywhere leaves a state from which the next run (or the `resume_codepay_flows` sweep) queries
instead of submitting twice.

Where the auth_code lives: in Redis, under a key of its own with a 120 s TTL, read once for the
submit and deleted as soon as `submitted_at` is committed. Not a job argument, because RQ keeps
a job's arguments in Redis after it ran (minutes on success, a year in the failed registry) and
prints them in some worker logs; the code is a one-time bearer credential, so it must not
outlive its ~1 minute of use. A key that is gone also tells the sweep, without guessing, that an
order whose submit never happened can no longer be submitted (it is closed locally). The code
is never written to the database or logged; logs carry `mask_code` at most.

The job commits in the middle (the submit rule needs it), so it runs separate
`db.unit_of_work()` blocks and leaves `run_job`'s outer unit empty.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from members import audit
from payments import codepay, money, states
from payments.codepay import Answer, Call, Step
from payments.config import current_payment_config
from payments.exceptions import WxPayError
from payments.gateway import WxPayApiError
from payments.models import CodepayAnswer, Order
from payments.service import NotificationRejected, PaymentError, apply_payment_notification, create_order, lock_order
from payments.shapes import Transaction
from wx_service.ground import redis_keys
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit, redis, services, settings
from wx_service.ground.redis_keys import cashier_next_run as next_run_key
from wx_service.ground.validation import BadShape, parse

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8))
JOB = "payments.cashier.advance_codepay"

# The biggest single charge a till may take: 100,000 yuan. A typo guard, not WeChat's limit.
MAX_AMOUNT_FEN = 100_000_00
AUTH_CODE_TTL = 120  # seconds; WeChat's payment code itself lives about a minute
# A flow whose next step is this late (or a never-submitted order this old) has no job moving it.
STALLED_AFTER = 30.0
MAX_STEPS_PER_RUN = 20  # steps due at once are done in one run; beyond this, queue another run
# A run whose next step is due within this many seconds waits for it in the job, for as long as
# the run has lasted less than RUN_BUDGET, instead of handing it to RQ's scheduler. Why: RQ's
# delayed jobs need a worker holding the scheduler lock, and a worker killed with -9 keeps that
# lock for about a minute (until a survivor takes it over on its maintenance round), which is
# longer than WeChat's 45-second window. A payment code then moves on time whatever happened to
# other workers; the price is one worker slot per till mid-payment (most end within seconds, a
# shopper who gives up holds it ~50 s), so run as many worker processes as tills that can be
# charging at once. Longer waits (reverse retries after the budget) still go to the scheduler.
IN_JOB_WAIT = 6.0
RUN_BUDGET = 75.0
# With a queue whose delayed jobs are reliable (the in-process one), wait only when a run starts
# a little early for its step, which RQ's whole-second scheduling can also do.
EARLY_TOLERANCE = 2.0
DEVICE_IP = "127.0.0.1"  # scene_info.device_ip; the tills sit behind the store's own network


class CashierRefused(PaymentError):
    """Bad input from the till (amount, payment code, counter): nothing was written."""


# -- keys (Redis key names are built here: they belong in wx_service/redis_keys.py) ----------------

# -- pure helpers ----------------------------------------------------------------------------------

def parse_yuan(text: str) -> int:
    """'12.3' -> 1230 fen, exactly (payments.money). At most 2 decimals, within the till's bounds."""
    try:
        return money.parse_yuan(text, max_fen=MAX_AMOUNT_FEN)
    except money.AmountError as exc:
        raise CashierRefused(str(exc)) from None


def mask_code(code: str) -> str:
    """Enough of a payment code to tell two scans apart in a log, never enough to use it."""
    code = str(code or "")
    return (code[:2] + "*" * max(len(code) - 6, 0) + code[-4:]) if len(code) > 6 else "*" * len(code)


def new_out_trade_no(now: datetime | None = None) -> str:
    """C + Beijing yyyymmddHHMMSS + 8 random digits (23 characters)."""
    return money.new_number("C", random_digits=8, now=now or utcnow())


def _beijing(value: datetime | None) -> str | None:
    return value.astimezone(SHANGHAI).strftime("%H:%M:%S") if value is not None else None


# -- starting a flow -------------------------------------------------------------------------------

def start_codepay(amount_fen: int, auth_code: str, counter: str, staff_id: int | None,
                  description: str) -> Order:
    """Write the order and queue the flow after commit. Refuses bad input before writing anything."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 1 <= amount_fen <= MAX_AMOUNT_FEN:
        raise CashierRefused(f"amount must be 1..{MAX_AMOUNT_FEN} fen")
    code = auth_code.strip() if isinstance(auth_code, str) else ""
    if not codepay.valid_auth_code(code):
        raise CashierRefused("not a WeChat payment code: 18 digits starting with 10-15; scan again")
    counter = (counter or "").strip()
    if not counter or len(counter) > 32:
        raise CashierRefused("counter is 1-32 characters")
    description = (description or "").strip()[:127] or "门店收银"
    appid = settings().WECHAT_APPID
    order = create_order(new_out_trade_no(), "codepay", amount_fen, appid, description=description)
    order.counter = counter
    order.staff_id = staff_id
    order.source = "cashier"
    db.session.flush()
    audit.record(staff_id, "order.create", f"order:{order.out_trade_no}",
                 after={"kind": "codepay", "amount_fen": amount_fen, "counter": counter, "state": order.state,
                        "source": order.source})
    key = redis_keys.cashier_auth_code(appid, order.out_trade_no, AUTH_CODE_TTL)
    # Written before commit: if the commit fails, the key is orphaned and expires in 120 s.
    redis().set(key.name, code, ex=key.ttl)
    enqueue_after_commit(JOB, out_trade_no=order.out_trade_no)
    log.info("payment code scanned", extra={"out_trade_no": order.out_trade_no, "code": mask_code(code),
                                            "amount_fen": amount_fen, "counter": counter})
    return order


# -- the job ---------------------------------------------------------------------------------------

def _answers(order: Order) -> list[CodepayAnswer]:
    return list(db.session.scalars(select(CodepayAnswer).where(CodepayAnswer.order_id == order.id)
                                   .order_by(CodepayAnswer.at, CodepayAnswer.id)))


def _history(rows: list[CodepayAnswer]) -> list[Answer]:
    return [Answer(Call(r.call), r.at, r.result, r.recall) for r in rows]


def _paid_resource(rows: list[CodepayAnswer]) -> dict[str, Any] | None:
    """The newest stored transaction that says paid, usable as a query answer."""
    for row in reversed(rows):
        paid = (row.call == Call.SUBMIT.value and row.result in codepay.SUBMIT_PAID) or \
               (row.call == Call.QUERY.value and row.result in codepay.QUERY_PAID)
        if not paid:
            continue
        try:
            body = json.loads(row.raw or "{}")
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("trade_state") in ("SUCCESS", "REFUND") and body.get("amount"):
            return body
    return None


def _set_state(order: Order, event: states.Event) -> states.Transition:
    transition = states.apply(order.state, event)
    if transition.changed:
        order.state = transition.new_state.value
    if states.Effect.RECONCILE in transition.effects:
        order.needs_reconcile = True
        log.error("payment-code flow disagrees with the order", extra={
            "out_trade_no": order.out_trade_no, "reason": transition.reason})
    return transition


def _finish(order: Order, decision: codepay.Decision, rows: list[CodepayAnswer]) -> str:
    """Apply how the flow ended, under the lock the caller holds. Returns what happened."""
    event = codepay.order_event(decision)
    if decision.step is Step.MANUAL:
        order.needs_reconcile = True
        log.error("payment-code flow handed to reconciliation", extra={
            "out_trade_no": order.out_trade_no, "reason": decision.reason})
        return "MANUAL"
    if event is states.Event.SUCCESS:
        resource = _paid_resource(rows)
        assert resource is not None, "caller queries first when no paid transaction is stored"
        try:
            apply_payment_notification(parse(Transaction, resource), None, mchid=current_payment_config().mchid)
        except (NotificationRejected, BadShape) as exc:
            order.needs_reconcile = True
            log.error("paid answer does not match the order: %s", exc,
                      extra={"out_trade_no": order.out_trade_no})
            return "MANUAL"
        return "PAID"
    assert event is not None
    _set_state(order, event)
    if order.state in (states.State.CLOSED.value, states.State.REVERSED.value) and order.closed_at is None:
        order.closed_at = utcnow()
    return order.state


def _clean_body(body: Any) -> str:
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "payer" or not isinstance(v, dict)
                or "auth_code" not in v}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)[:4000]


def _call(order_snapshot: dict[str, Any], call: Call, auth_code: str | None) -> tuple[str, bool, str]:
    """One call to WeChat: (result, recall, raw). Never raises for WeChat's answers."""
    gateway = current_payment_config().gateway(order_snapshot["appid"])
    no = order_snapshot["out_trade_no"]
    try:
        if call is Call.SUBMIT:
            if auth_code is None:
                # The code vanished between the commit and here: what reached WeChat is unknown
                # (nothing), so record no answer at all and let the schedule query.
                return "NO_CODE", False, ""
            answer = gateway.codepay(no, order_snapshot["description"], order_snapshot["amount_fen"],
                                     auth_code, order_snapshot["counter"], DEVICE_IP)
            return answer.result, False, _clean_body(answer.body)
        if call is Call.QUERY:
            data = gateway.query_by_out_trade_no(no)
            return str(data.get("trade_state") or "UNKNOWN"), False, _clean_body(data)
        recall = gateway.reverse(no)
        return "SUCCESS", recall, json.dumps({"recall": "Y" if recall else "N"})
    except WxPayApiError as exc:
        return exc.code, False, _clean_body({"code": exc.code, "status": exc.status, "message": exc.message})
    except WxPayError as exc:  # an answer we could not verify: nothing in it is used
        log.error("unverifiable WeChat Pay answer to %s: %s", call.value, exc, extra={"out_trade_no": no})
        return "UNVERIFIED", False, _clean_body({"error": str(exc)})


def _schedule(appid: str, out_trade_no: str, due: datetime, now: datetime) -> None:
    delay = max((due - now).total_seconds(), 0.0)
    key = next_run_key(appid, out_trade_no, due, int(delay) + 300)
    if not redis().set(key.name, "1", nx=True, ex=key.ttl):
        return  # another copy of the flow already queued this very step
    services().queue.enqueue_in(delay, JOB, out_trade_no=out_trade_no)


def advance_codepay(out_trade_no: str) -> str:
    """The job: do every step of the flow that is due now, store each answer, queue the next.

    Returns what it left the order at (for logs and tests): PAID, CLOSED, REVERSED, MANUAL,
    ENDED (already ended before this run), WAITING (next step queued) or UNKNOWN_ORDER.
    """
    started = time.monotonic()
    for _ in range(MAX_STEPS_PER_RUN):
        auth_code: str | None = None
        with db.unit_of_work():
            order = lock_order(out_trade_no)
            if order is None or order.kind != "codepay":
                log.error("no payment-code order %s", out_trade_no)
                return "UNKNOWN_ORDER"
            if states.is_terminal(order.state) or order.needs_reconcile:
                return "ENDED"
            now = utcnow()
            snapshot = {"out_trade_no": order.out_trade_no, "appid": order.appid, "counter": order.counter,
                        "amount_fen": order.amount_fen, "description": order.description or "门店收银"}
            key = redis_keys.cashier_auth_code(order.appid, order.out_trade_no, AUTH_CODE_TTL)
            if order.submitted_at is None:
                if not redis().exists(key.name):
                    _set_state(order, states.Event.SUBMIT_FAILED)
                    order.closed_at = now
                    log.warning("payment code expired before it was submitted: closed locally, "
                                "WeChat was never asked", extra={"out_trade_no": order.out_trade_no})
                    return order.state
                order.submitted_at = now
                call = Call.SUBMIT
            else:
                rows = _answers(order)
                decision = codepay.next_step(order.submitted_at, _history(rows), now)
                if decision.step is Step.DONE_PAID and _paid_resource(rows) is None:
                    call = Call.QUERY  # paid, but no transaction body to apply: fetch it
                elif decision.done:
                    return _finish(order, decision, rows)
                elif decision.at is not None and decision.at > now:
                    due = decision.at
                    call = None
                else:
                    call = Call(decision.step.value)
        # Committed: submitted_at is durable before the submit leaves; the lock is released.
        if call is None:
            wait = (due - utcnow()).total_seconds()
            in_job = IN_JOB_WAIT if getattr(services().queue, "short_waits_in_job", False) else EARLY_TOLERANCE
            if wait <= in_job and time.monotonic() - started + wait <= RUN_BUDGET:
                # Also covers a run RQ started a little early (its scheduler counts whole seconds).
                time.sleep(max(wait, 0.0))
                continue
            _schedule(snapshot["appid"], out_trade_no, due, utcnow())
            return "WAITING"
        if call is Call.SUBMIT:
            auth_code = redis().getdel(key.name)
            auth_code = auth_code.decode() if isinstance(auth_code, bytes) else auth_code
        result, recall, raw = _call(snapshot, call, auth_code)
        auth_code = None
        with db.unit_of_work():
            order = lock_order(out_trade_no)
            assert order is not None
            at = utcnow()
            if result != "NO_CODE":
                db.session.add(CodepayAnswer(order_id=order.id, call=call.value, at=at,
                                             result=result[:32], recall=recall, raw=raw))
            order.checked_at = at
            if result in ("USERPAYING", "PAYERROR") and call is not Call.REVERSE:
                _set_state(order, states.Event(result))
        log.info("payment-code %s answered %s", call.value, result,
                 extra={"out_trade_no": out_trade_no, "recall": recall})
    # Too many steps at once (cannot happen with the schedule's delays): let another run go on.
    services().queue.enqueue_in(1, JOB, out_trade_no=out_trade_no)
    return "WAITING"


def resume_codepay_flows(stalled_after: float = STALLED_AFTER) -> dict[str, list[str]]:
    """The sweep: queue the flow of every unfinished payment-code order nobody is moving.

    "Not moving": its next step is more than `stalled_after` seconds overdue (a worker died, a
    queued job was lost). An order never submitted whose payment code is gone is closed locally
    (WeChat never saw it). Safe to run at any time: duplicate runs of a flow are harmless.
    """
    now = utcnow()
    grace = timedelta(seconds=stalled_after)
    unfinished = [s.value for s in states.UNPAID]
    numbers = list(db.session.scalars(select(Order.out_trade_no).where(
        Order.kind == "codepay", Order.state.in_(unfinished), Order.needs_reconcile.is_(False))
        .order_by(Order.id)))
    enqueued: list[str] = []
    closed: list[str] = []
    for no in numbers:
        order = lock_order(no)
        if order is None or order.state not in unfinished or order.needs_reconcile:
            continue
        if order.submitted_at is None:
            if not redis().exists(redis_keys.cashier_auth_code(order.appid, no, AUTH_CODE_TTL).name):
                _set_state(order, states.Event.SUBMIT_FAILED)
                order.closed_at = now
                log.warning("payment code expired before it was submitted: closed locally, "
                            "WeChat was never asked", extra={"out_trade_no": no})
                closed.append(no)
            elif order.created_at + grace <= now:
                enqueued.append(no)
            continue
        decision = codepay.next_step(order.submitted_at, _history(_answers(order)), now)
        due = decision.at or (order.checked_at or order.submitted_at)
        if decision.done or due + grace <= now:
            enqueued.append(no)
    for no in enqueued:
        enqueue_after_commit(JOB, out_trade_no=no)
    if enqueued or closed:
        log.info("payment-code sweep", extra={"enqueued": enqueued, "closed": closed})
    return {"enqueued": enqueued, "closed": closed}


# -- the page's view -------------------------------------------------------------------------------

RESULT_LABELS: dict[str, tuple[str, str]] = {
    "SUCCESS": ("成功", "success"),
    "ORDERPAID": ("已支付", "already paid"),
    "USERPAYING": ("顾客正在输入密码", "shopper is entering the password"),
    "NOTENOUGH": ("余额不足", "balance not enough"),
    "AUTHCODEEXPIRE": ("付款码已过期", "payment code expired"),
    "AUTH_CODE_INVALID": ("付款码无效", "payment code invalid"),
    "INVALID_REQUEST": ("付款码无效或已使用", "payment code invalid or used"),
    "NOTSUPORTCARD": ("不支持该卡", "card not supported"),
    "ORDERCLOSED": ("订单已关闭", "order closed"),
    "ORDERREVERSED": ("订单已撤销", "order reversed"),
    "PARAM_ERROR": ("参数错误", "parameter error"),
    "RULE_LIMIT": ("交易受限", "limited by WeChat's rules"),
    "SYSTEM_ERROR": ("微信系统繁忙", "WeChat system error"),
    "SYSTEMERROR": ("微信系统繁忙", "WeChat system error"),
    "BANKERROR": ("银行系统异常", "bank error"),
    "TIMEOUT": ("微信无应答", "no answer from WeChat"),
    "UNVERIFIED": ("应答验签失败", "answer failed verification"),
    "NOTPAY": ("未支付", "not paid"),
    "PAYERROR": ("支付失败", "payment failed"),
    "CLOSED": ("已关闭", "closed"),
    "REVOKED": ("已撤销", "reversed"),
    "REFUND": ("已支付（有退款）", "paid (refund exists)"),
    "ORDER_NOT_EXIST": ("微信无此订单", "WeChat has no such order"),
}
CALL_LABELS = {Call.SUBMIT: ("提交", "submit"), Call.QUERY: ("查询", "query"), Call.REVERSE: ("撤销", "reverse")}
STATE_LABELS: dict[str, tuple[str, str]] = {
    "CREATED": ("待提交", "waiting to submit"),
    "USERPAYING": ("顾客正在输入密码", "shopper is entering the password (USERPAYING)"),
    "PAYERROR": ("支付失败，正在撤销", "payment failed, ending it"),
    "PAID": ("支付成功", "PAID"),
    "PARTIALLY_REFUNDED": ("已部分退款", "partially refunded"),
    "REFUNDED": ("已退款", "refunded"),
    "CLOSED": ("未扣款，已关闭", "not paid, closed"),
    "REVERSED": ("已撤销", "reversed"),
}
STEP_LABELS = {Step.QUERY: ("查询", "query"), Step.REVERSE: ("撤销", "reverse"),
               Step.MANUAL: ("转人工对账", "hand to reconciliation")}


def _result_label(result: str) -> tuple[str, str]:
    return RESULT_LABELS.get(result.upper(), (result, result))


def flow_view(out_trade_no: str) -> dict[str, Any] | None:
    """What the cashier page shows: the state, each step so far (Beijing time) and what is next.
    None when there is no such payment-code order."""
    order = db.session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
    if order is None or order.kind != "codepay":
        return None
    rows = _answers(order)
    steps: list[dict[str, Any]] = []
    if order.submitted_at is not None:
        steps.append({"call": "SUBMITTED", "at": _beijing(order.submitted_at), "result": "",
                      "zh": "已提交给微信支付", "en": "submitted"})
    numbers = {call: 0 for call in Call}
    for row in rows:
        call = Call(row.call)
        numbers[call] += 1
        zh, en = _result_label(row.result)
        call_zh, call_en = CALL_LABELS[call]
        if call is not Call.SUBMIT:
            call_zh, call_en = f"{call_zh} {numbers[call]}", f"{call_en} {numbers[call]}"
        result = row.result + (" recall=Y" if row.recall else "")
        steps.append({"call": call.value, "at": _beijing(row.at), "result": result,
                      "zh": f"{call_zh}：{zh}", "en": f"{call_en}: {result} ({en})"})
    ended = states.is_terminal(order.state) or order.needs_reconcile
    zh, en = STATE_LABELS.get(order.state, (order.state, order.state))
    outcome = None
    next_step = None
    if order.state == states.State.PAID.value:
        outcome = {"code": "PAID", "zh": "支付成功", "en": "PAID"}
    elif order.state == states.State.REVERSED.value:
        outcome = {"code": "REVERSED", "zh": "已撤销，未扣款", "en": "reversed"}
    elif order.state == states.State.CLOSED.value:
        failure = next((r.result for r in rows if r.call == Call.SUBMIT.value
                        and r.result in codepay.DEFINITE_FAILURES), None)
        if failure is not None:
            f_zh, _ = _result_label(failure)
            outcome = {"code": "FAILED", "zh": f"支付失败：{f_zh}", "en": f"failed: {failure} ({f_zh})"}
        elif order.submitted_at is None:
            outcome = {"code": "CLOSED", "zh": "付款码过期，未提交，已关闭",
                       "en": "closed: the code expired before it was sent to WeChat"}
        else:
            outcome = {"code": "CLOSED", "zh": "未扣款，已关闭", "en": "closed, nothing taken"}
    elif order.needs_reconcile:
        outcome = {"code": "MANUAL", "zh": "结果不明，转人工对账", "en": "unclear: handed to reconciliation"}
    elif order.submitted_at is not None:
        decision = codepay.next_step(order.submitted_at, _history(rows), utcnow())
        if not decision.done:
            s_zh, s_en = STEP_LABELS.get(decision.step, (decision.step.value, decision.step.value))
            wait = max((decision.at - utcnow()).total_seconds(), 0.0) if decision.at else 0.0
            next_step = {"step": decision.step.value, "at": _beijing(decision.at), "in_seconds": round(wait, 1),
                         "reason": decision.reason, "zh": s_zh, "en": f"{s_en}: {decision.reason}"}
    return {"out_trade_no": order.out_trade_no, "amount_fen": order.amount_fen,
            "amount": money.format_fen(order.amount_fen), "counter": order.counter, "state": order.state,
            "state_zh": zh, "state_en": en, "ended": ended, "outcome": outcome, "steps": steps,
            "next": next_step, "created_at": _beijing(order.created_at)}
