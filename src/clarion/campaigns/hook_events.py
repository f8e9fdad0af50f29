"""Campaign events (`campaign.started`, `.completed`, `.paused`, `.cancelled`) into the hooks'
outbox, written by the one function of each status change (service.py, lifecycle.py) in its
transaction. The event's `data` is the campaign as `GET /campaigns/{id}` shows it."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import presenter
from clarion.campaigns.models import Campaign
from clarion.hooks import outbox


async def record(
    session: AsyncSession, campaigns: Sequence[Campaign], event_type: str, now: datetime
) -> None:
    """One `event_type` event per campaign (already flushed in its new status)."""
    if not campaigns:
        return
    for c, out in zip(campaigns, await presenter.present(session, campaigns), strict=True):
        data = out.model_dump(mode="json", by_alias=True)
        await outbox.record_event(session, c.account_id, event_type, data, now)


async def record_ids(
    session: AsyncSession, campaign_ids: Sequence[int], event_type: str, now: datetime
) -> None:
    """As `record`, for campaigns changed by a guarded UPDATE (read back here)."""
    if not campaign_ids:
        return
    rows = await session.execute(
        select(Campaign)
        .where(Campaign.id.in_(campaign_ids))
        .order_by(Campaign.id)
        .execution_options(populate_existing=True)
    )
    await record(session, list(rows.scalars()), event_type, now)
