from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class Campaign(Base):
    """A campaign, with its delivery counters kept on the row so that stats over thousands of
    campaigns are a small GROUP BY. The engine never updates the row per batch: it appends
    `messages.models.CampaignTally` rows that the scheduler folds in (campaigns/counters.py)."""

    __tablename__ = "campaign"
    __table_args__ = (
        Index("ix_campaign_account_status", "account_id", "status"),
        Index("ix_campaign_due", "status", "scheduled_at"),
        Index("ix_campaign_account_started", "account_id", "started_at"),
        # Live event streams find the campaigns that moved by this column (clarion.events).
        Index("ix_campaign_updated_at", "updated_at"),
        # Retention's path: finished campaigns whose rows are not deleted yet, oldest first.
        Index(
            "ix_campaign_to_purge",
            "completed_at",
            postgresql_where=text("purged_at IS NULL AND completed_at IS NOT NULL"),
            sqlite_where=text("purged_at IS NULL AND completed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="draft")  # awaiting_approval: 17
    message: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    list_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    exclude_list_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    # Segments targeted beside the lists, and their filters as they were when the campaign
    # was created or last given `segmentIds` (a later edit or deletion of a segment does not
    # change a campaign); `audience_filter` narrows the union (the API's `filter`).
    segment_ids: Mapped[list[int]] = mapped_column(JSONType, default=list, server_default="[]")
    segment_filters: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=list, server_default="[]"
    )
    audience_filter: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    sender: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # SMS: replace characters that force UCS-2 by GSM-7 look-alikes (pricing/smart.py).
    smart_encoding: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # SMS/RCS text: each URL becomes a per-recipient short link under `link_base_url`, the
    # base in force when the campaign was last written (so the estimate counts the links
    # the sender makes, whatever the setting becomes meanwhile).
    track_links: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    link_base_url: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fallback_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    estimate_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Materialization progress: the last contact id turned into a message (resumable).
    materialized_through: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    materialized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Credits in 1/10,000: held in reserve now, and spent so far.
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    # Delivery counters: a partition of `recipients` by each message's latest status.
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    sending: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Maker/checker: the `approval` object of the API (people as {"id", "email", "name"}),
    # and the send time the submitter asked for (approve confirms with it).
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    approval_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    # When retention deleted the campaign's messages and receipts (its counters, cost and
    # stats stay on this row); written only by operations/retention.py.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The clicks and clicking recipients of the tracked links retention deleted (added as
    # each batch of links goes): readers add them to the sums over the links still there,
    # so `stats.clicks` and `uniqueClicks` stay as they were. Written only by retention.
    purged_clicks: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    purged_unique_clicks: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default=text("0")
    )
    # A/B test (campaigns/abtest.py): the variants ([{"name", "message"}]) replace `message`;
    # `ab_test` is {"testShare", "metric", "decideAfterMinutes"}; `ab_seed` makes the choice
    # of the test recipients reproducible; `ab_test_at` is when the test share was
    # materialized; the winner and its time are set once, by one guarded UPDATE.
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)
    ab_test: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    ab_seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ab_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ab_winner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ab_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Compliance: `marketing` campaigns keep the account's sending hours and frequency cap,
    # `transactional` ones ignore both. `send_window` ({"days", "start", "end"}, recipient
    # local time) narrows the hours further; a message not handed over by `expires_at` is
    # skipped (EXPIRED).
    purpose: Mapped[str] = mapped_column(
        String(16), default="marketing", server_default="marketing"
    )
    send_window: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
