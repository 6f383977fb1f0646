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
