"""Background work for members: anything that calls WeChat."""
from __future__ import annotations

from typing import Any

from members import service
from wx_service.ground.db import utcnow
from wx_service.ground.extensions import wechat_client


def fetch_follower_profile(openid: str) -> None:
    """Fetch user/info for a new follower: its unionid joins OA, mini-program and card identities."""
    info = wechat_client().user.get(openid)
    if not info.get("subscribe"):
        return
    unionid = info.get("unionid")
    service.save_profile(openid, unionid, info.get("nickname", ""), utcnow())
    if unionid:
        # A follower who is already a member elsewhere (mini-program, card) is that member.
        from members.identity import OA, member_for_unionid, resolve_member

        if member_for_unionid(unionid) is not None:
            resolve_member(OA, openid, unionid)


def sync_card(member_id: int) -> None:
    """Bring the WeChat card face up to date with the ledger and the level.

    The card row is locked, so two sync jobs for one member run one after the other, and each
    sends the newest totals (`bonus`) with the change since the last successful sync
    (`add_bonus`): a job that runs late or twice sends nothing wrong. On a transient error the
    job is retried; on a final one (e.g. 45009, the daily quota) the card stays behind and
    `resync_cards` catches it up later."""
    from sqlalchemy import func, select

    from members.identity import get_member
    from members.models import MemberCard, PointsEntry
    from members.program import load_program
    from wx_service.ground.extensions import db

    member = get_member(member_id)
    cards = list(db.session.scalars(select(MemberCard).where(
        MemberCard.member_id == member.id, MemberCard.status == "active").with_for_update()))
    if not cards:
        return
    latest = db.session.scalar(select(func.max(PointsEntry.id)).where(PointsEntry.member_id == member.id)) or 0
    level_name = load_program().level(member.level).name
    for card in cards:
        if card.synced_ledger_id >= latest and card.synced_level == member.level:
            continue
        change = int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
            PointsEntry.member_id == member.id, PointsEntry.id > card.synced_ledger_id)))
        body = {"code": card.code, "card_id": card.card_id, "bonus": member.points_balance,
                "custom_field_value1": level_name,
                "notify_optional": {"is_notify_bonus": change != 0, "is_notify_custom_field1": card.synced_level != member.level}}
        if change:
            body["add_bonus"] = change
            body["record_bonus"] = "积分变动" if change > 0 else "积分使用"
        client = wechat_client()
        client.post(f"{client.api_base}/card/membercard/updateuser", data=body)
        card.synced_ledger_id = latest
        card.synced_level = member.level
    db.session.flush()


def _card_api(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a card API. Card APIs live at /card/..., not under wechatpy's /cgi-bin/ base."""
    client = wechat_client()
    return client.post(f"{client.api_base}/{path}", data=body)


def create_card_if_missing() -> bool:
    """First half of `card push`: card/create once, and keep the card_id (its own transaction, so
    a later failure cannot make the next run create a second card). True if it created one."""
    from members import cards

    if cards.current_definition() is not None:
        return False
    result = _card_api("card/create", cards.card_create_body())
    cards.record_created(result["card_id"])
    return True


def bring_card_up_to_date(just_created: bool = False) -> str:
    """Second half of `card push`: nothing when the pushed hash matches the file; otherwise
    card/update (unless the card was just created from this very file) and the activation form."""
    from members import cards
    from members.program import load_program

    definition = cards.current_definition()
    if definition is None:
        raise RuntimeError("no card to update: create it first")
    content_hash = load_program().content_hash
    if definition.content_hash == content_hash:
        return f"card {definition.card_id} already up to date"
    if not just_created:
        _card_api("card/update", cards.card_update_body(definition.card_id))
    _card_api("card/membercard/activateuserform/set", cards.activation_form_body(definition.card_id))
    cards.record_pushed(definition, content_hash)
    return f"card {definition.card_id} {'created' if just_created else 'updated'}"


def activate_card(code: str) -> None:
    """After the shopper submitted the activation form: read it, bind phone and profile, activate.

    The card row is locked, so a second job for the same card waits and then finds it active and
    does nothing. A phone that belongs to another member (another unionid) is a defined outcome:
    the card stays unactivated and the shopper is told by customer-service text."""
    from sqlalchemy import select

    from members import cards, ledger
    from members.exceptions import PhoneBoundToAnotherMember
    from members.identity import get_member
    from members.models import MemberCard
    from members.program import load_program
    from wx_service.ground.extensions import db, enqueue_after_commit

    card = db.session.scalar(select(MemberCard).where(MemberCard.code == code).with_for_update())
    if card is None or card.status != "issued":
        return
    info = _card_api("card/membercard/userinfo/get", {"card_id": card.card_id, "code": code})
    name, phone, birthday = cards.parse_form(info.get("user_info") or {})
    try:
        member_id = cards.apply_form(card, name, phone, birthday)
    except PhoneBoundToAnotherMember:
        enqueue_after_commit("wx_service.ground.jobs.send_text", openid=card.openid, text=PHONE_TAKEN_TEXT)
        return
    # Locked, so a payment cannot land between the balance sent as init_bonus and the ledger id
    # recorded as synced (it waits, then its own sync job sends the change).
    member = ledger.lock_member(get_member(member_id).id)
    _card_api("card/membercard/activate", {
        "membership_number": code, "code": code, "card_id": card.card_id,
        "init_bonus": member.points_balance, "init_custom_field_value1": load_program().level(member.level).name})
    cards.mark_active(code)


PHONE_TAKEN_TEXT = "该手机号已绑定其他微信用户的会员卡，会员卡暂未激活。如需帮助，请回复“人工”联系客服。"
