"""Errors the member services raise."""


class UnknownFollower(LookupError):
    """An openid the service has never seen follow the account."""
