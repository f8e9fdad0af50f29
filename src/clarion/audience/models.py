from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class Contact(Base):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("account_id", "phone"),
        Index("ix_contact_account_last_name", "account_id", "last_name"),
        # Segment filters and audiences by country (the commonest condition) read only
        # that country's contacts of the account.
        Index("ix_contact_account_country", "account_id", "country"),
        # PostgreSQL only: segment filters test attribute equality by jsonb containment.
        Index(
            "ix_contact_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166 alpha-2 ("ZZ" when unknown)
    first_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Where the contact lives when the number does not say it: ISO 3166-2 ("US-FL") and an
    # IANA time zone ("America/New_York"); both optional.
    region: Mapped[str | None] = mapped_column(String(6), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactOptOut(Base):
    """A channel the contact has opted out of; audience resolution excludes these in SQL."""

    __tablename__ = "contact_opt_out"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactConsent(Base):
    """The contact's consent to marketing on one channel (none: never asked). A row per
    (contact, channel), so that audience resolution filters on it in SQL."""

    __tablename__ = "contact_consent"

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))  # "granted" | "denied"
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was given or withdrawn
    source: Mapped[str] = mapped_column(String(16))  # api | console | import | inbound | ...
    proof: Mapped[str | None] = mapped_column(Text, nullable=True)


class OptOutEvent(Base):
    """The contact's history: every opt-out ("out"), opt-in ("in") and consent change
    ("consent", with the new `status`), with its source (api, console, import, inbound,
    provider) and the actor (key, user, provider, system) that caused it. Written only
    through `audience.history.record`. (Campaign estimates watch its highest id per account
    and channel to tell that an audience's exclusions changed.)"""

    __tablename__ = "opt_out_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(8))  # "out" | "in" | "consent"
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str | None] = mapped_column(String(8), nullable=True)  # consent events
    actor_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ContactList(Base):
    __tablename__ = "contact_list"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped on every membership change, so estimates can tell when an audience changed.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ListMember(Base):
    __tablename__ = "list_member"
    __table_args__ = (Index("ix_list_member_contact", "contact_id"),)

    list_id: Mapped[int] = mapped_column(
        ForeignKey("contact_list.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactImport(Base):
    __tablename__ = "contact_import"
    # Live event streams find the imports that moved by this column (see clarion.events).
    __table_args__ = (Index("ix_contact_import_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_list.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), default="running")
    filename: Mapped[str | None] = mapped_column(String(500), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Written with every chunk: a `running` import whose heartbeat is old lost its process
    # (another API process of a cluster must not fail an import that is still moving).
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactImportError(Base):
    """Every rejected row of an import (`GET /imports/{id}/errors`); the import row keeps a
    sample of the first ones for `GET /imports/{id}`. Bounded by the file: one per record."""

    __tablename__ = "contact_import_error"
    __table_args__ = (Index("ix_contact_import_error_import_row", "import_id", "row"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("contact_import.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
