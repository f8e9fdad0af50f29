from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarion.db.base import Base, BigId, UTCDateTime, utcnow


class Rate(Base):
    """One row of the rate card. `country` is ISO alpha-2 or "*"; `category` is "" when the
    row applies to every category. `price` is in 1/10,000 credit per unit."""

    __tablename__ = "rate"
    __table_args__ = (UniqueConstraint("channel", "country", "category"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2))
    category: Mapped[str] = mapped_column(String(32), default="")
    price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The system_setting row holding the fingerprint of the card in the `rate` table; written in
# the same transaction as the rows, read on every `load_rate_card` as a cheap version check.
VERSION_KEY = "rate_card_fingerprint"


@dataclass(frozen=True, slots=True, order=True)
class RateRow:
    channel: str
    country: str  # ISO alpha-2, or "*"
    category: str  # "" when the row applies to every category
    price: int  # 1/10,000 credit per unit
