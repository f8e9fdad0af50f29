"""Event hooks: the customer's webhook endpoints, the outbox of events they want, and the
batches (deliveries) those events leave in."""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime, utcnow


class Hook(Base):
    """One endpoint of an account. `event_types` holds the subscribed names space-separated
    with a space at each end (" message.sent campaign.started "), so the outbox inserts can
    test a subscription in SQL with one LIKE. The delivering worker holds the hook with a
    lease (`lease_owner`, `lease_until`) so that one worker at a time sends its batches, in
    order. `failing_since`: the first failed attempt since the last success."""

    __tablename__ = "hook"
    __table_args__ = (Index("ix_hook_account", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    event_types: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Events one outbox row holds at most: the writers cover this many subjects (messages,
# contacts) a statement, and a statement's events for a hook are one row. An event's id is
# its row's id times ID_SPAN plus its place in the row.
PER_ROW = 500
ID_SPAN = 1000


class HookEvent(Base):
    """The outbox: rows of events for one hook, written in the transaction of the change
    that caused them. `events` is a JSON array of up to `PER_ROW` `{"type", "at", "data"}`
    in order of occurrence; `event_count` its length. `delivery_id` is set when the row is
    put in a batch (whole: a row is never split); the row stays (a failed delivery's retry
    sends its events again) until retention deletes it with its finished delivery."""

    __tablename__ = "hook_event"
    # Undelivered rows of a hook in order: a partial index, so that rows leave it once
    # batched and the next batch is read from its head whatever the outbox's size.
    __table_args__ = (
        Index(
            "ix_hook_event_pending",
            "hook_id",
            "id",
            postgresql_where=text("delivery_id IS NULL"),
            sqlite_where=text("delivery_id IS NULL"),
        ),
        Index("ix_hook_event_delivery", "delivery_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("hook.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(Integer)
    events: Mapped[str] = mapped_column(Text)
    delivery_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class HookDelivery(Base):
    """One batch of up to 500 events POSTed to a hook, retried until a 2xx or given up.
    Retention (operations/retention.py) deletes the finished ones once old, found by
    `ix_hook_delivery_created` (`created_at` is written once: no index change per attempt)."""

    __tablename__ = "hook_delivery"
    __table_args__ = (
        Index("ix_hook_delivery_hook_status", "hook_id", "status", "id"),
        Index("ix_hook_delivery_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("hook.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    events: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The start of the retry window (24 h); a manual retry starts a new one.
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
