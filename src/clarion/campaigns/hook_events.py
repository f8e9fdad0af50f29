"""Campaign events (`campaign.started`, `.completed`, `.paused`, `.cancelled`) into the hooks'
outbox, written by the one function of each status change (service.py, lifecycle.py) in its
transaction. The event's `data` is the campaign as `GET /campaigns/{id}` shows it."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.campaigns.schemas import ApprovalOut, CampaignOut, CostOut, DeliveryCounters
from clarion.hooks import outbox
from clarion.money import from_units


def _data(c: Campaign, unfolded: dict[str, int] | None) -> dict[str, Any]:
    live = counters.live(c, unfolded)
    out = CampaignOut(
        id=c.id,
        name=c.name,
        channel=c.channel,
        status=c.status,
        message=c.message or {},
        list_ids=c.list_ids or [],
        exclude_list_ids=c.exclude_list_ids or [],
        sender=c.sender,
        fallback_channel=c.fallback_channel,
        scheduled_at=c.scheduled_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
        confirmed_at=c.confirmed_at,
        started_at=c.started_at,
        completed_at=c.completed_at,
        estimate=c.estimate,
        stats=DeliveryCounters.model_validate(live),
        cost=CostOut(reserved=from_units(live["reserved"]), spent=from_units(live["spent"])),
        approval=ApprovalOut.model_validate(c.approval) if c.approval else None,
    )
    return out.model_dump(mode="json", by_alias=True)


async def record(
    session: AsyncSession, campaigns: Sequence[Campaign], event_type: str, now: datetime
) -> None:
    """One `event_type` event per campaign (already flushed in its new status)."""
    if not campaigns:
        return
    unfolded = await counters.pending(session, [c.id for c in campaigns])
    for c in campaigns:
        await outbox.record_event(
            session, c.account_id, event_type, _data(c, unfolded.get(c.id)), now
        )


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
