"""The emulated WeChat Pay's notifications (§10.3-10.4): the resource encrypted with the merchant's
APIv3 key, the body signed with the platform key, delivered from a thread and retried on WeChat's
schedule 15s/15s/30s/3m/… divided by the state's notify_time_factor until a 200/204 comes back.
A reset (new generation) stops the retries of the previous test."""
from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import datetime
from typing import Any

import requests

from payments.wxpay_v3 import build_verify_message, encrypt_resource, new_nonce, sign
from wx_service.edges.emulator.pay_state import NOTIFY_SCHEDULE, SHANGHAI

NOTIFY_TIMEOUT = 5.0  # WeChat waits 5 s for the answer (§10.4)


def _now_text(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, SHANGHAI).isoformat(timespec="seconds")


def notify(state, mchid: str, url: str, event_type: str, summary: str, original_type: str,
            resource: dict[str, Any]) -> None:
    """Queue a signed, encrypted notification; delivered from a thread on WeChat's schedule.
    Called with the emulator lock held."""
    pay = state.pay
    merchant = pay.merchants[mchid]
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    notice = {
        "id": "EV-" + secrets.token_hex(10), "create_time": _now_text(),
        "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
        "resource": encrypt_resource(merchant["apiv3_key"], plaintext, associated_data=original_type,
                                     original_type=original_type),
    }
    record = {"id": notice["id"], "event_type": event_type, "url": url, "attempts": [],
              "delivered": False, "resource": resource}
    pay.notifications.append(record)
    thread = threading.Thread(target=deliver, args=(state, pay.generation, notice, record),
                              daemon=True)
    thread.start()


def deliver(state, generation: int, notice: dict[str, Any], record: dict[str, Any]) -> None:
    body = json.dumps(notice, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    for attempt in range(len(NOTIFY_SCHEDULE) + 1):
        with state.lock:
            pay = state.pay
            if pay.generation != generation:
                return
            platform, factor = pay.current, pay.notify_time_factor
        ts, nonce = str(int(time.time())), new_nonce()
        headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": ts,
                   "Wechatpay-Nonce": nonce, "Wechatpay-Serial": platform.serial,
                   "Wechatpay-Signature": sign(platform.key, build_verify_message(ts, nonce, body)),
                   "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                   "User-Agent": "Mozilla/4.0 (WeChat Pay emulator)"}
        try:
            status = requests.post(record["url"], data=body, headers=headers,
                                   timeout=NOTIFY_TIMEOUT).status_code
        except requests.RequestException as exc:
            status = f"error: {type(exc).__name__}"
        with state.lock:
            record["attempts"].append({"at": time.time(), "status": status})
            if status in (200, 204):
                record["delivered"] = True
                return
        if attempt < len(NOTIFY_SCHEDULE):
            time.sleep(NOTIFY_SCHEDULE[attempt] / factor)

