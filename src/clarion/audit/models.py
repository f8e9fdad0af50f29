from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class AuditEvent(Base):
    """One change, written in the transaction that made it. Actors and targets are copied
    (type, id, name) so the row stays readable after they are deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_account", "account_id", "id"),
        Index("ix_audit_event_account_action", "account_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), nullable=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(320), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
