"""Errors the member services raise. Each is a defined outcome, not a crash."""


class MembershipError(Exception):
    """Base for refusals a caller can show to a person."""


class UnknownFollower(MembershipError, LookupError):
    """An openid the service has never seen follow the account."""


class UnknownMember(MembershipError, LookupError):
    pass


class UnknownCard(MembershipError, LookupError):
    """A card code the service never issued or recorded."""


class InsufficientPoints(MembershipError):
    """A redemption or adjustment would take the balance below zero."""


class SourceKeyConflict(MembershipError):
    """The same source key was used for a different ledger entry (a caller bug, refused)."""


class PhoneBoundToAnotherMember(MembershipError):
    """The phone belongs to a member who is provably someone else (another unionid)."""


class RefundExceedsPayment(MembershipError):
    """Refunds for one payment would add up to more than was paid."""


class UnknownPayment(MembershipError, LookupError):
    """A refund for a payment that never earned points here."""


class ApprovalRequired(MembershipError):
    """A staff adjustment above the limit needs a second staff member."""


class SameStaffCannotApprove(MembershipError):
    pass


class CouponNotRedeemable(MembershipError):
    """Unknown, already redeemed or expired."""
