from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime, utcnow


class Account(Base):
    """A customer. `balance` and `reserved` are integers of 1/10,000 credit."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    # Account settings (GET/PUT /account/settings).
    approval_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the key (keys are random, so no slow hash needed)."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="default", server_default="default")
    # viewer, editor, manager or owner (clarion.roles).
    role: Mapped[str] = mapped_column(String(16), default="manager", server_default="manager")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CreditLedger(Base):
    """Every credit movement. Invariants: sum(balance_delta) == balance and
    sum(reserved_delta) == reserved, as `ledger.credits_of` reads them (the account row less
    what reservation slices spent and it does not show yet); per campaign,
    sum(reserved_delta) is what it still holds in reserve.

    kinds: topup (+balance), debit (-balance), reserve (+reserved), release (-reserved),
    charge (-balance and -reserved: a sent message paid from its campaign's reservation),
    refund (+balance: a charged message the provider then reported failed and does not bill).
    """

    __tablename__ = "credit_ledger"
    __table_args__ = (Index("ix_credit_ledger_campaign", "campaign_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    balance_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    # No foreign key: the ledger outlives deleted campaigns.
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReservationSlice(Base):
    """Part of a campaign's reservation set aside for one worker (`owner`), so that the
    worker pays its batches of that campaign without locking the account row.

    `amount` is still counted in the campaign's ledger hold and in `account.reserved`; it
    only says that no one else may spend it. `spent` is what the worker charged from it
    (each charge has its ledger row, `charge`) and is not yet folded into the account row:
    the account's balance and reserved are the row's values minus the `spent` of its slices.
    Invariant: per campaign, the slices' amounts add up to at most what it holds.
    """

    __tablename__ = "reservation_slice"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="slice_amount_not_negative"),
        CheckConstraint("spent >= 0", name="slice_spent_not_negative"),
    )

    # No foreign key to the campaign: the accounts domain sits below campaigns (as the
    # ledger's campaign_id does); a campaign's slices are dissolved when it settles.
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)


class SystemSetting(Base):
    """Small key/value facts the service keeps about itself (e.g. the admin token hash)."""

    __tablename__ = "system_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class IdempotencyRecord(Base):
    """The first answer to a request sent with an Idempotency-Key, replayed for 24 h."""

    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(
        String(255)
    )  # method + route, e.g. "PUT /campaigns/7/confirm"
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (
        Index("uq_idempotency_record_key", "account_id", "scope", "key", unique=True),
    )
