"""Brand news to 10,000 subscribers through real RQ workers on real Redis and Postgres, with one
worker killed (SIGKILL) mid-run: the sweep queues its chunk again, and in the end every eligible
shopper has exactly one message in their chat (the emulator's sends counted per openid), the
capped and the unfollowed were skipped and counted by reason, and the announcement is finished.

The 10,000 followers and subscriptions are seeded with bulk inserts; the emulated WeChat is this
test process's live server, which the worker processes call over HTTP."""
from __future__ import annotations

import os
import signal
from datetime import timedelta

from sqlalchemy import insert, select

from marketing import announcements
from marketing import news_jobs as jobs
from marketing.models import Announcement, BrandNewsDelivery, BrandSubscription
from members.models import Follower
from tests.conftest import requires_postgres, requires_redis
from tests.integration.brand_news_helpers import arrival, brand, progress
from tests.integration.reservation_helpers import uow
from tests.integration.test_cashier import _kill_tree, _wait, _worker
from wx_service.ground.db import utcnow

N = 10_000
UNFOLLOWED_EVERY, CAPPED_EVERY = 50, 40  # 200 left the OA; 250 - 50 (both) = 200 already had two this week


def _seed(app, emulator, lancome: int) -> tuple[set[str], set[str], set[str]]:
    """N followers subscribed to the brand an hour ago; some unfollowed, some capped."""
    openids = [f"oBulk{i:05d}" for i in range(N)]
    unfollowed = {o for i, o in enumerate(openids) if i % UNFOLLOWED_EVERY == 0}
    capped = {o for i, o in enumerate(openids) if i % CAPPED_EVERY == 0} - unfollowed
    for openid in openids:
        emulator.add_shopper(openid, "顾客").subscribed = openid not in unfollowed
    an_hour_ago = utcnow() - timedelta(hours=1)
    with uow(app) as session:
        session.execute(insert(Follower), [{"openid": o, "unionid": None, "nickname": "", "subscribed": o not in unfollowed,
                                            "first_subscribed_at": an_hour_ago, "first_scene": ""} for o in openids])
        session.execute(insert(BrandSubscription), [{"openid": o, "brand_id": lancome, "active": True, "channel": "h5",
                                                     "created_at": an_hour_ago, "changed_at": an_hour_ago} for o in openids])
        earlier = [Announcement(kind="activity", item_id=90_000 + n, title="earlier", brand_ids=[lancome], counts={})
                   for n in range(2)]
        session.add_all(earlier)
        session.flush()
        session.execute(insert(BrandNewsDelivery), [
            {"announcement_id": a.id, "openid": o, "kind": "activity", "item_id": a.item_id, "brand_id": lancome,
             "status": "sent", "channel": "template", "to_openid": o, "detail": "", "created_at": an_hour_ago,
             "sent_at": an_hour_ago} for a in earlier for o in capped])
    return set(openids) - unfollowed - capped, unfollowed, capped


@requires_postgres
@requires_redis
def test_ten_thousand_subscribers_with_a_worker_killed_mid_run_get_one_message_each(app, emulator, settings):
    lancome = brand(app)
    eligible, unfollowed, capped = _seed(app, emulator, lancome)
    item = arrival(app, lancome, "菁纯臻颜精华")
    with uow(app):
        made = announcements.announce("new_arrival", item).id
    sends = lambda: emulator.calls.get("message/template/send", 0)  # noqa: E731
    workers = [_worker(settings), _worker(settings)]
    try:
        _wait("a third of the sends", lambda: sends() >= N // 3, timeout=240)
        _kill_tree(workers[0].pid)  # mid-chunk: its claimed shoppers are `sending`, its lease will lapse
        workers[0].wait(10)
        # The other worker carries on with every later chunk; the killed one's chunk stays running.
        _wait("the other chunks", lambda: progress(app, made)["chunks_done"] == progress(app, made)["chunks_total"] - 1,
              timeout=300)
        assert progress(app, made)["state"] == "running"
        with uow(app):
            assert jobs.resume_stalled(now=utcnow() + jobs.LEASE + timedelta(minutes=1))["requeued"] == 1
        _wait("the announcement to finish", lambda: progress(app, made)["state"] == "done", timeout=240)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)

    seen = {openid: sum(1 for line in emulator.shoppers[openid].chat if line["via"] == "template")
            for openid in eligible | unfollowed | capped}
    assert {o for o, n in seen.items() if n != 1} & eligible == set()  # each eligible shopper exactly once
    assert all(seen[o] == 0 for o in unfollowed | capped)
    shown = progress(app, made)
    assert shown["counts"] == {"sent": len(eligible), "skipped:unfollowed": len(unfollowed),
                               "skipped:capped": len(capped), "skipped:unsubscribed": 0, "skipped:no_channel": 0,
                               "failed": 0, "unknown": 0, "sending": 0}
    assert shown["chunks_done"] == shown["chunks_total"] == N // settings.BRAND_NEWS_CHUNK_SIZE + 1
    with uow(app) as session:
        assert session.scalar(select(Announcement.subscribers).where(Announcement.id == made)) == N
