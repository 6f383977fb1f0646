"""Background work for members: anything that calls WeChat."""
from __future__ import annotations

from members import service
from wx_service.db import utcnow
from wx_service.extensions import wechat_client


def fetch_follower_profile(openid: str) -> None:
    """Fetch user/info for a new follower: its unionid joins OA, mini-program and card identities."""
    info = wechat_client().user.get(openid)
    if not info.get("subscribe"):
        return
    service.save_profile(openid, info.get("unionid"), info.get("nickname", ""), utcnow())


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
    from wx_service.extensions import db

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
        wechat_client().post("card/membercard/updateuser", data=body)
        card.synced_ledger_id = latest
        card.synced_level = member.level
    db.session.flush()
