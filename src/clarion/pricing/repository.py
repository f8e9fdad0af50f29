"""Queries on the rate card."""

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import SystemSetting
from clarion.db.dialect import is_postgres
from clarion.pricing.models import VERSION_KEY, Rate, RateRow

# Any constant: the PostgreSQL advisory lock that serializes rate card replacements.
_RATE_CARD_LOCK = 0x52415445


async def lock_rate_card(session: AsyncSession) -> None:
    """Serialize concurrent replacements (delete-all then insert would otherwise collide on
    the unique constraint). SQLite write transactions are already serialized (BEGIN IMMEDIATE)."""
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RATE_CARD_LOCK})


async def replace_rates(session: AsyncSession, rows: list[RateRow], fingerprint: str) -> None:
    """Swap the whole card and its stored fingerprint, in the caller's transaction."""
    await session.execute(delete(Rate))
    if rows:
        await session.execute(
            insert(Rate),
            [
                {
                    "channel": r.channel,
                    "country": r.country,
                    "category": r.category,
                    "price": r.price,
                }
                for r in rows
            ],
        )
    await session.execute(delete(SystemSetting).where(SystemSetting.key == VERSION_KEY))
    if rows:
        await session.execute(insert(SystemSetting).values(key=VERSION_KEY, value=fingerprint))


async def stored_fingerprint(session: AsyncSession) -> str | None:
    """The fingerprint stored with the card in the `rate` table (None: no custom card)."""
    return await session.scalar(select(SystemSetting.value).where(SystemSetting.key == VERSION_KEY))


async def stored_rows(session: AsyncSession) -> list[RateRow]:
    """The rows of the `rate` table."""
    result = await session.execute(select(Rate.channel, Rate.country, Rate.category, Rate.price))
    return [RateRow(ch, co, ca or "", int(p)) for ch, co, ca, p in result]
