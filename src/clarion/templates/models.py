from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, JSONType, UTCDateTime, utcnow


class Template(Base):
    __tablename__ = "template"
    __table_args__ = (UniqueConstraint("account_id", "channel", "name", "language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16), default="en")
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    rich_card: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    suggestions: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    variables: Mapped[list[str]] = mapped_column(JSONType, default=list)
    provider_template_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
