"""Thin adapters between WeChat pushes and the domain: one push in, a domain call, one reply out.

No SQL and no business rules here. The routing table is `handlers/routes.py`.
"""
