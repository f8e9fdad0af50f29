from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class ComplianceSettingsRow(Base):
    """One account's compliance settings (`GET/PUT /account/compliance`). An account without
    a row has the defaults of `clarion.compliance.settings.DEFAULTS`."""

    __tablename__ = "compliance_settings"

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    # [{"country", "region", "days", "start", "end", "holidays"}], as the API writes them.
    sending_hours: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Both null, or both set: no cap, or `cap_messages` per `cap_period_hours`.
    cap_messages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cap_period_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    require_consent: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    opt_out_keywords: Mapped[list[str]] = mapped_column(JSONType)
    opt_in_keywords: Mapped[list[str]] = mapped_column(JSONType)
    help_keywords: Mapped[list[str]] = mapped_column(JSONType)
    opt_out_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    opt_in_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    help_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
