"""The ground: what every domain package and every edge stands on.

Here: the database and unit of work (`db`, `extensions`), Redis keys (`redis_keys`), the job
queue and the cron scheduler (`queue`, `scheduler`), the WeChat API clients and their token store
(`wechat_client`, `mp_client`, `token_store`, and `jobs` that send on the service's behalf),
logging (`logs`), and the WeChat protocol (`protocol/`, with the push router, `router`, and the
push dedup, `dedup`).

The rule: a ground module imports only the standard library, third-party packages, `config` and
other ground modules. Never a domain package (members, payments, marketing), never `handlers`,
never an edge. Which jobs run when, and which handler answers a push, is for the edges to say.
"""
