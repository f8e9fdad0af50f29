from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime, utcnow


class MessageStatus(StrEnum):
    """Every status a message can be in (`states.py` says how receipts move them)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class Message(Base):
    """One recipient of one campaign, or a message of no campaign (a reply to an inbound
    keyword: `campaign_id` NULL, its own `text` and `sender`). This table is the send queue:
    workers claim `queued` rows whose `next_attempt_at` has come, under a lease
    (`lease_owner`, `lease_until`)."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id"),
        # No (campaign_id, status) index: every index is paid per materialized recipient;
        # per-status lookups go through the partial indexes below or the unique key above.
        # The claimer's path: a campaign's queued messages, oldest due first.
        Index(
            "ix_message_queue",
            "campaign_id",
            "next_attempt_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_message_lease",
            "lease_until",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        # Receipts look messages up by provider id; materialized rows have none yet, so a
        # partial index costs nothing when a million recipients are inserted.
        # The expiry sweep's path: accepted messages still waiting for a receipt, oldest
        # first (paid only while a message is `sent`).
        Index(
            "ix_message_awaiting_receipt",
            "sent_at",
            postgresql_where=text("status = 'sent'"),
            sqlite_where=text("status = 'sent'"),
        ),
        # The frequency cap's path: what the account's contacts were handed lately. Rows
        # are added to it only when sent, never when materialized.
        Index(
            "ix_message_contact_sent",
            "account_id",
            "contact_id",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
        Index(
            "ix_message_provider_id",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
            sqlite_where=text("provider_message_id IS NOT NULL"),
        ),
        # Who last messaged a phone (an inbound keyword's reply is paid by that account);
        # paid only once a message is handed to a provider.
        Index(
            "ix_message_phone_sent",
            "phone",
            "sent_at",
            postgresql_where=text("sent_at IS NOT NULL"),
            sqlite_where=text("sent_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: checking it costs a lock on the campaign row per inserted message
    # (materializing a million recipients took 2.5x longer). Campaigns are soft-deleted.
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: a reply
    account_id: Mapped[int] = mapped_column(BigInteger)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: test send
    phone: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    units: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[int] = mapped_column(BigInteger, default=0)  # 1/10,000 credit, charged
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Held outside its sending hours: the next allowed instant (also its next_attempt_at,
    # so the claim's index skips it until then). Null when not held.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The A/B variant whose message this recipient gets (None: not an A/B campaign).
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A message of no campaign carries what it says and who it is from.
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    sender: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CampaignTally(Base):
    """A net change of one campaign's counters, appended by whoever moved its messages (a
    claimed or recorded batch, a receipt, a materialized chunk) in the same transaction.

    Appending instead of updating the campaign row means no worker ever waits on another for
    that row; the scheduler folds these rows into the campaign row (`counters.fold`) and
    readers add what is not folded yet (`counters.pending`). Each row is balanced (what
    leaves one status enters another), so the partition adds up at every instant."""

    __tablename__ = "campaign_tally"
    __table_args__ = (Index("ix_campaign_tally_campaign", "campaign_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    sending: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
