"""The campaign's delivery counters: a partition of its recipients by message status.

Every code path that moves messages between statuses calls `move()` in the same transaction,
with the net change per status, so the counters always add up to `recipients`.
"""

from collections.abc import Mapping

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign

STATUSES = ("queued", "sending", "sent", "delivered", "read", "failed", "skipped", "expired")


async def move(
    session: AsyncSession,
    campaign_id: int,
    deltas: Mapping[str, int],
    *,
    recipients: int = 0,
    spent: int = 0,
) -> None:
    """Apply net counter changes, e.g. {"sending": -10, "sent": 9, "failed": 1}."""
    values = {}
    for status, delta in deltas.items():
        if status not in STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        if delta:
            column = getattr(Campaign, status)
            values[status] = column + delta
    if recipients:
        values["recipients"] = Campaign.recipients + recipients
    if spent:
        values["spent"] = Campaign.spent + spent
    if values:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
