"""Rate card rules: replacing the card and reading the one in force."""

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.pricing import repository
from clarion.pricing.rates import RateCard, load_rate_card, validate_rows


async def replace_rate_card(session: AsyncSession, rows: Iterable[Mapping[str, Any]]) -> RateCard:
    """Validate `rows` and make them the whole rate card, atomically (in the caller's
    transaction). An empty list removes the custom card: the packaged default applies again.
    Returns the card now in force."""
    valid = validate_rows(rows)
    await repository.lock_rate_card(session)
    card = RateCard(valid, "custom")
    await repository.replace_rates(session, card.rows, card.fingerprint)
    return await load_rate_card(session)
