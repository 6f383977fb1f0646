"""Orders, WeChat Pay, notifications, refunds and reconciliation."""
