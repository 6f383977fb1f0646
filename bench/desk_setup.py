"""Seed customer-service conversations straight into a migrated benchmark database.

Shared by bench/webhook_load.py (--desk-fraction) and bench/desk_fanout.py. Rows go in with plain
SQL on a psycopg connection, as the desk would leave them once an agent has taken a chat: a team,
staff members with agents in it (online), and for each shopper an open conversation in status
`assigned` to one of those agents. The shopper's Redis mark (redis_keys.desk_open, with its TTL)
is set as intake.start / events.refresh_marks would set it, so the webhook's claim sends the
shopper's pushes down the desk path: handlers.customer_service.in_conversation ->
service_desk.intake.on_message (read the conversation, UPDATE last_inbound_at, commit, PUBLISH).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone

from wx_service.ground import redis_keys


def plain_pg(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def seed_desk(database_url: str, openids: Sequence[str], *, team_code: str = "bench",
              agents: int = 1, passwords: dict[str, str] | None = None,
              username_prefix: str = "bench-agent") -> dict[str, object]:
    """One team, `agents` staff+agent rows (online; a console password where `passwords` names
    the username), and an `assigned` conversation per openid, handed round-robin to the agents.

    Returns {"team_id", "agent_ids", "staff": [(username, staff_id, agent_id)],
    "conversations": {openid: conversation_id}}."""
    import psycopg
    from werkzeug.security import generate_password_hash

    now = datetime.now(timezone.utc)
    passwords = passwords or {}
    with psycopg.connect(plain_pg(database_url), autocommit=False) as conn:
        team_id = conn.execute("INSERT INTO desk_teams (code, name) VALUES (%s, %s) RETURNING id",
                               (team_code, f"Bench team {team_code}")).fetchone()[0]
        staff_rows = []
        for k in range(agents):
            username = f"{username_prefix}-{k:03d}"
            pw = passwords.get(username)
            staff_id = conn.execute(
                "INSERT INTO staff (username, name, active, password_hash, created_at) "
                "VALUES (%s, %s, true, %s, %s) RETURNING id",
                (username, f"Agent {k}", generate_password_hash(pw) if pw else "", now)).fetchone()[0]
            agent_id = conn.execute(
                "INSERT INTO desk_agents (staff_id, team_id, status, max_open, open_load, last_offered_at) "
                "VALUES (%s, %s, 'online', %s, 0, NULL) RETURNING id",
                (staff_id, team_id, 10**6)).fetchone()[0]
            staff_rows.append((username, staff_id, agent_id))
        conversations: dict[str, int] = {}
        load: dict[int, int] = {}
        with conn.cursor() as cur:
            for n, openid in enumerate(openids):
                agent_id = staff_rows[n % len(staff_rows)][2]
                cur.execute(
                    "INSERT INTO desk_conversations (openid, member_id, team_id, source, context, status, "
                    "assignee_id, created_at, queued_at, offered_at, assigned_at, declined_by, channel, "
                    "bot_misses, last_inbound_at) VALUES (%s, NULL, %s, 'keyword', '', 'assigned', %s, %s, %s, "
                    "%s, %s, '', 'oa', 0, %s) RETURNING id",
                    (openid, team_id, agent_id, now, now, now, now, now))
                conversations[openid] = cur.fetchone()[0]
                load[agent_id] = load.get(agent_id, 0) + 1
            for agent_id, n in load.items():
                cur.execute("UPDATE desk_agents SET open_load = %s WHERE id = %s", (n, agent_id))
        conn.commit()
    return {"team_id": team_id, "agent_ids": [a for _, _, a in staff_rows], "staff": staff_rows,
            "conversations": conversations}


def set_marks(redis_url: str, appid: str, conversations: dict[str, int]) -> int:
    """The Redis mark of every shopper in `conversations`, as the desk writes it (value: the
    conversation id; TTL: redis_keys.desk_open's)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for openid, conversation_id in conversations.items():
            key = redis_keys.desk_open(appid, openid)
            pipe.set(key.name, conversation_id, ex=key.ttl)
        if conversations:
            pipe.execute()
    finally:
        client.close()
    return len(conversations)


def desk_indexes(pool: int, fraction: float) -> list[int]:
    """Which of `pool` shopper numbers get a conversation: `fraction` of them, spread evenly (with
    0.2, every fifth), so every stretch of consecutive pushes has its share of desk pushes."""
    if fraction <= 0:
        return []
    if fraction >= 1:
        return list(range(pool))
    return [n for n in range(pool) if int((n + 1) * fraction) > int(n * fraction)]
