from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime


class Link(Base):
    """One URL of one recipient's message, reached through its short code.

    Made with the message, when the audience is materialized (`clarion.links.service`).
    `clicks` and `first_clicked_at` move with every click in an atomic UPDATE, so a
    campaign's figures are sums over its clicked links (the partial index), never a scan of
    the click rows. No foreign key to `message` or `campaign`: like the message table's,
    a check per inserted row would cost more than the bulk insert itself.
    """

    __tablename__ = "link"
    __table_args__ = (
        # One row per URL position of a message. The sender looks up a batch's links by
        # (campaign, message); a campaign's links are listed by its prefix. (One index for
        # both: each index is paid per link made, twice per recipient for two URLs.)
        Index("ux_link_campaign_message", "campaign_id", "message_id", "position", unique=True),
        # Statistics read only the links that were clicked.
        Index(
            "ix_link_clicked",
            "campaign_id",
            "message_id",
            postgresql_where=text("clicks > 0"),
            sqlite_where=text("clicks > 0"),
        ),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(SmallInteger)
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    first_clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Click(Base):
    """One visit of a short link: when, with which user agent, from which (hashed) address."""

    __tablename__ = "click"
    __table_args__ = (Index("ix_click_code", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), ForeignKey("link.code", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # HMAC-SHA256 of the address with the server's secret (CLARION_LINK_SECRET): visits
    # from one address can be told apart, the address cannot be read back.
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
