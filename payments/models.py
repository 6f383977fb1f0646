"""Orders, their append-only payment transactions (every notification as received) and refunds.

Money is integer fen; times are UTC. Each callback from WeChat is idempotent through a unique
key here: out_trade_no, transaction_id, out_refund_no and the notification id.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wx_service.ground.db import Base, UTCDateTime, utcnow


class Order(Base):
    """One order we asked WeChat Pay to collect. `state` is a payments.states.State value."""

    __tablename__ = "pay_orders"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # native | jsapi | codepay
    appid: Mapped[str] = mapped_column(String(32))  # the app the order was placed for
    amount_fen: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(8), default="CNY")
    description: Mapped[str] = mapped_column(String(127), default="")
    state: Mapped[str] = mapped_column(String(24), default="CREATED", index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True, index=True)
    payer_openid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    attach: Mapped[str] = mapped_column(String(128), default="")
    # Who got points for this order (set once, by the AWARD_POINTS effect): refunds take back from them.
    points_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    # Set when WeChat and we disagree (a states.py CONFLICT): a human or the reconciliation job looks.
    needs_reconcile: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Native: the code_url shown as a QR; JSAPI: the prepay_id. Set once WeChat has the order.
    code_url: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prepay_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where it was paid (a counter or till id; "mp" for the mini-program) and the online touch
    # that led to it (a QR scene, an article, a reservation): what makes O2O traceable.
    counter: Mapped[str] = mapped_column(String(32), default="", index=True)
    source: Mapped[str] = mapped_column(String(64), default="")
    # The staff member who opened it at a counter or till (None: the shopper did, e.g. JSAPI).
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    # Payment code: set just before the submit is sent, so a worker that dies mid-call knows the
    # submit may have reached WeChat and queries instead of submitting twice.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The last time a job asked WeChat about this order (query/close sweeps).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CodepayAnswer(Base):
    """Append-only: each answer WeChat gave in a payment-code flow, stored before acting on it,
    so payments.codepay.next_step can pick the flow up where any worker left it."""

    __tablename__ = "pay_codepay_answers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("pay_orders.id"), index=True)
    call: Mapped[str] = mapped_column(String(8))  # codepay.Call: SUBMIT | QUERY | REVERSE
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(32))
    recall: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[str] = mapped_column(Text, default="")


class PaymentTransaction(Base):
    """Append-only: every distinct notification, query answer or our own call's answer about an order."""

    __tablename__ = "pay_transactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("pay_orders.id"), index=True)
    # WeChat's notification id: a retry carries the same one, the unique key makes it count once.
    notification_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # transaction / refund (a notification), query, or our own close / reverse / refund call answers
    kind: Mapped[str] = mapped_column(String(16))
    trade_state: Mapped[str] = mapped_column(String(24))  # trade_state or refund_status as reported
    outcome: Mapped[str] = mapped_column(String(16), default="")  # states.Outcome of applying it
    raw: Mapped[str] = mapped_column(Text)  # the decrypted resource, verbatim
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """One refund of an order; `status` is a payments.refunds.RefundStatus value."""

    __tablename__ = "pay_refunds"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("pay_orders.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="PROCESSING")
    refund_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    needs_reconcile: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReconciliationRun(Base):
    """One comparison of a day's trade bill from WeChat with our orders and refunds."""

    __tablename__ = "pay_reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_date: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD, Beijing time
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")  # RUNNING | MATCHED | DIFFERENCES | FAILED
    wechat_rows: Mapped[int] = mapped_column(Integer, default=0)
    our_rows: Mapped[int] = mapped_column(Integer, default=0)
    differences: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReconciliationDifference(Base):
    """One disagreement found by a run. Reported, never fixed silently: a person resolves it."""

    __tablename__ = "pay_reconciliation_differences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pay_reconciliation_runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # MISSING_OURS | MISSING_WECHAT | AMOUNT | STATE …
    out_trade_no: Mapped[str] = mapped_column(String(32), default="")
    out_refund_no: Mapped[str] = mapped_column(String(64), default="")
    ours: Mapped[str] = mapped_column(Text, default="")  # what our records say
    wechat: Mapped[str] = mapped_column(Text, default="")  # what the bill says
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
