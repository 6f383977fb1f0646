"""One-key customer service: conversations between shoppers and the store's agents (issue 10).

This package holds the domain: teams, agents and their load, conversations and who owns them.
Every ownership change is one guarded UPDATE, so the database, not a check made first, decides
who gets a conversation when several agents reach for it at once.
"""
