"""The WeChat member card: its definition as pushed to WeChat, and the cards shoppers hold.

Service verbs only: they read and write the database and queue jobs after commit. Whatever calls
WeChat (card/create, activation, updateuser) lives in members/jobs.py.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from members.exceptions import UnknownCard
from members.identity import bind_phone, get_member, member_for_openid, resolve_member, set_profile
from members.models import CardDefinition, MemberCard, PointsEntry
from members.points import membership_summary
from members.program import Program, load_program
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import db, enqueue_after_commit

log = logging.getLogger(__name__)

SKU_QUANTITY = 100_000_000  # a member card is never "sold out"
FIELD_NAME = "USER_FORM_INFO_FLAG_NAME"
FIELD_MOBILE = "USER_FORM_INFO_FLAG_MOBILE"
FIELD_BIRTHDAY = "USER_FORM_INFO_FLAG_BIRTHDAY"


def masked(code: str) -> str:
    """A card code as logs may carry it (never in full)."""
    return ("*" * max(0, len(code) - 4)) + code[-4:]


# -- the definition --------------------------------------------------------------------------------

def card_create_body(program: Program | None = None) -> dict[str, Any]:
    """The card/create body (reference §7.2) from config/member_card.json."""
    card = (program or load_program()).raw["card"]
    base_info = {
        "logo_url": card["logo_url"], "brand_name": card["brand_name"], "code_type": card["code_type"],
        "title": card["title"], "color": card["color"], "notice": card["notice"],
        "service_phone": card["service_phone"], "description": card["description"],
        "date_info": {"type": "DATE_TYPE_PERMANENT"}, "sku": {"quantity": SKU_QUANTITY},
        "get_limit": 1, "use_custom_code": False, "can_give_friend": False,
        "custom_url_name": card["custom_url_name"], "custom_url": card["custom_url"],
    }
    return {"card": {"card_type": "MEMBER_CARD", "member_card": {
        "background_pic_url": card["background_pic_url"], "base_info": base_info,
        "prerogative": card["prerogative"], "wx_activate": True, "supply_bonus": True,
        "supply_balance": False, "custom_field1": {"name_type": "FIELD_NAME_TYPE_LEVEL"}}}}


def card_update_body(card_id: str, program: Program | None = None) -> dict[str, Any]:
    """The card/update body: what card/update may change. WeChat refuses changes to the brand,
    the stock and the code source after creation, so those are left out."""
    member_card = card_create_body(program)["card"]["member_card"]
    base_info = {k: v for k, v in member_card["base_info"].items()
                 if k not in ("brand_name", "sku", "use_custom_code")}
    return {"card_id": card_id, "member_card": {**member_card, "base_info": base_info}}


def activation_form_body(card_id: str, program: Program | None = None) -> dict[str, Any]:
    """The one-click activation form (reference §7.3, activateuserform/set)."""
    form = (program or load_program()).raw["activation_form"]
    body: dict[str, Any] = {"card_id": card_id,
                            "required_form": {"can_modify": False, "common_field_id_list": list(form["required"])}}
    if form.get("optional"):
        body["optional_form"] = {"can_modify": False, "common_field_id_list": list(form["optional"])}
    return body


def current_definition() -> CardDefinition | None:
    """The card this service pushed (one card programme per account)."""
    return db.session.scalar(select(CardDefinition).order_by(CardDefinition.id.desc()).limit(1))


def record_created(card_id: str) -> CardDefinition:
    """Keep the card_id the moment WeChat returns it, before anything else can fail: an empty hash
    makes the next push finish the job (update + form) instead of creating a second card."""
    definition = CardDefinition(card_id=card_id, content_hash="", status="pending")
    db.session.add(definition)
    db.session.flush()
    return definition


def record_pushed(definition: CardDefinition, content_hash: str) -> None:
    definition.content_hash = content_hash
    definition.pushed_at = utcnow()
    db.session.flush()


def record_review(card_id: str, passed: bool, reason: str = "") -> CardDefinition | None:
    """card_pass_check / card_not_pass_check: WeChat's review of the card definition."""
    definition = db.session.scalar(select(CardDefinition).where(CardDefinition.card_id == card_id))
    if definition is None:
        log.warning("review result for a card this service did not create: %s", card_id)
        return None
    definition.status = "approved" if passed else "rejected"
    definition.refuse_reason = "" if passed else reason[:256]
    db.session.flush()
    return definition


# -- cards held by shoppers ------------------------------------------------------------------------

def card_for_code(code: str) -> MemberCard | None:
    return db.session.scalar(select(MemberCard).where(MemberCard.code == code)) if code else None


def record_claim(openid: str, card_id: str, code: str, unionid: str | None = None, outer_str: str = "",
                 source_scene: str = "", restored: bool = False) -> MemberCard | None:
    """user_get_card: the shopper now holds `code`. The member is found or created from the openid
    (and unionid). Claiming again after deleting (IsRestoreMemberCard=1, or the same code) brings
    the old card back as it was: active if it had been activated. A claim without a code or
    card id (not a claim WeChat would send) is logged and ignored."""
    if not code or not card_id:
        log.warning("user_get_card without a code or card id from %s: ignored", openid[:8])
        return None
    member = resolve_member("oa", openid, unionid or None)
    card = card_for_code(code)
    if card is None:
        card = MemberCard(member_id=member.id, card_id=card_id, code=code, openid=openid, status="issued",
                          outer_str=outer_str[:128], source_scene=source_scene[:64], issued_at=utcnow())
        db.session.add(card)
    elif card.status == "deleted":
        card.status = "active" if card.activated_at else "issued"
        card.deleted_at = None
    if restored and card.status == "active":
        enqueue_after_commit("members.jobs.sync_card", member_id=card.member_id)
    db.session.flush()
    return card


def request_activation(code: str) -> MemberCard | None:
    """submit_membercard_user_info: fetch the form answers and activate, in a job."""
    card = card_for_code(code)
    if card is None:
        _unknown(code, "submit_membercard_user_info")
        return None
    if card.status == "issued":
        enqueue_after_commit("members.jobs.activate_card", code=code)
    return card


def _unknown(code: str, event: str) -> None:
    """An event for a code this service never recorded (claimed before it ran, or not ours):
    a defined outcome, logged; nothing changes and WeChat still gets `success`."""
    log.info("card event %s for an unknown code %s: ignored", event, masked(code))


def record_view(code: str) -> MemberCard | None:
    card = card_for_code(code)
    if card is None:
        _unknown(code, "user_view_card")
    else:
        card.last_viewed_at = utcnow()
        db.session.flush()
    return card


def record_delete(code: str) -> MemberCard | None:
    """user_del_card: the card is marked deleted; the member, points and history stay."""
    card = card_for_code(code)
    if card is None:
        _unknown(code, "user_del_card")
    elif card.status != "deleted":
        card.status = "deleted"
        card.deleted_at = utcnow()
        db.session.flush()
    return card


def record_event(code: str, event: str, **details: str) -> MemberCard | None:
    """Events that change nothing here (update_member_card, user_consume_card): logged with the
    card they concern; the push itself is kept in inbound_pushes."""
    card = card_for_code(code)
    log.info("card event %s for %s (member %s): %s", event, masked(code), card.member_id if card else None, details)
    return card


def parse_form(user_info: dict[str, Any]) -> tuple[str, str, date | None]:
    """Name, phone and birthday from userinfo/get's common_field_list."""
    fields = {item.get("name"): str(item.get("value") or "").strip()
              for item in (user_info.get("common_field_list") or []) if isinstance(item, dict)}
    birthday = None
    raw = fields.get(FIELD_BIRTHDAY, "")
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"):
        try:
            birthday = datetime.strptime(raw, fmt).date()
            break
        except ValueError:
            continue
    return fields.get(FIELD_NAME, ""), fields.get(FIELD_MOBILE, ""), birthday


def apply_form(card: MemberCard, name: str, phone: str, birthday: date | None) -> int:
    """Bind the phone and profile from the activation form; the (possibly merged) member's id.
    Raises PhoneBoundToAnotherMember when the phone is provably someone else's."""
    member = get_member(card.member_id)
    if phone:
        member = bind_phone(member.id, phone)
    set_profile(member.id, name=name or None, birthday=birthday)
    return member.id


def mark_active(code: str) -> MemberCard:
    """The card was activated on WeChat with the member's totals: it is in sync up to now."""
    card = card_for_code(code)
    if card is None:
        raise UnknownCard(masked(code))
    db.session.refresh(card)  # a merge may have moved it to another member
    member = get_member(card.member_id)
    card.member_id = member.id
    card.status = "active"
    card.activated_at = utcnow()
    card.synced_ledger_id = int(db.session.scalar(select(func.coalesce(func.max(PointsEntry.id), 0))
                                                  .where(PointsEntry.member_id == member.id)))
    card.synced_level = member.level
    db.session.flush()
    return card


# -- "my membership" -------------------------------------------------------------------------------

OFFER_TEXT = "您还没有南山百货会员卡，已为您发送会员卡，点击即可领取；领取后填写姓名、手机号和生日即可激活。"
NO_CARD_TEXT = ("您还没有南山百货会员卡。\n扫描门店收银台的会员卡二维码，或点击公众号文章中的“领取会员卡”，"
                "领卡后填写姓名、手机号和生日即可激活，消费即可积分。")


def membership_text(openid: str) -> str:
    """The reply to "my membership": card, level, points, the level's benefits, the next level."""
    member = member_for_openid("oa", openid)
    if member is None:
        return NO_CARD_TEXT
    summary = membership_summary(member.id)
    if summary.card_code is None:
        return NO_CARD_TEXT
    card = card_for_code(summary.card_code)
    lines = [f"会员卡号：{summary.card_code}" + ("" if card and card.status == "active" else "（待激活）"),
             f"会员等级：{summary.level.name}", f"当前积分：{member.points_balance}"]
    if summary.level.benefits:
        lines.append("等级权益：" + "；".join(summary.level.benefits))
    progress = summary.progress
    if progress.next_level is None:
        lines.append("您已是最高等级会员，感谢支持！")
    else:
        lines.append(f"再消费 {progress.fen_to_next / 100:.2f} 元即可升级为{progress.next_level.name}")
    return "\n".join(lines)


def has_card(openid: str) -> bool:
    member = member_for_openid("oa", openid)
    return member is not None and membership_summary(member.id).card_code is not None


def offer_card(openid: str) -> bool:
    """Send the member card to a shopper who has none (a customer-service `wxcard` message they
    claim with one tap); False when the card has not been pushed to WeChat yet."""
    definition = current_definition()
    if definition is None or definition.status == "rejected":
        return False
    enqueue_after_commit("wx_service.ground.jobs.send_card", openid=openid, card_id=definition.card_id)
    return True
