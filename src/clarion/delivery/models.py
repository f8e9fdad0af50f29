from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime, utcnow


class ReceiptEvent(Base):
    """A raw delivery receipt as a provider sent it. `message_id` is set once it has been
    matched and applied; until then the event is parked (its message is not recorded yet)."""

    __tablename__ = "receipt_event"
    __table_args__ = (
        Index("ix_receipt_event_provider_id", "provider", "provider_message_id"),
        Index(
            "ix_receipt_event_parked",
            "received_at",
            postgresql_where=text("message_id IS NULL"),
            sqlite_where=text("message_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # sent | delivered | read | failed
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The provider does not bill a message that failed so (see `Receipt.refund`).
    refund: Mapped[bool] = mapped_column(Boolean, default=False)


class ProviderIdAlias(Base):
    """Another provider id that stands for a message's `provider_message_id`: each later part
    of a long SMPP message has an SMSC id of its own, and receipts may come for any part.
    Stored when the parts are accepted, so a receipt still maps after a restart."""

    __tablename__ = "provider_id_alias"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundEvent(Base):
    """An inbound message as it was handled: what it asked (`opt_out`, `opt_in`, `help` or
    nothing) and the reply queued for it. The unique provider id makes a provider's retried
    webhook the same message: handled once, answered once. A message whose protocol has no
    id (SMPP MO) is stored under a key made from its fingerprint (see
    `repository.record_inbound`)."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        UniqueConstraint("provider", "provider_message_id"),
        # A message without an id (SMPP MO) is compared with the phone's latest one.
        Index("ix_inbound_event_phone", "provider", "from_phone", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    from_phone: Mapped[str] = mapped_column(String(32))
    to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(String(8), nullable=True)
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
