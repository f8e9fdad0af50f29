"""What the engine reads besides messages: which campaigns may have work, what an account
can still spend. (Message changes are the named transitions of `messages/transitions.py`.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime
from clarion.messages.models import CampaignTally

_UTC = UTCDateTime()


# --- claimer --------------------------------------------------------------------------------


@dataclass(slots=True)
class ActiveCampaign:
    id: int
    account_id: int
    channel: str


async def active_campaigns(session: AsyncSession) -> list[ActiveCampaign]:
    """Campaigns that may have work to claim: `sending` (a paused or cancelled campaign is
    skipped), something queued or counters not folded yet."""
    rows = await session.execute(
        select(Campaign.id, Campaign.account_id, Campaign.channel)
        .where(
            Campaign.status == "sending",
            or_(
                Campaign.queued > 0,
                exists().where(CampaignTally.campaign_id == Campaign.id),
            ),
        )
        .order_by(Campaign.id)
    )
    return [ActiveCampaign(*row) for row in rows]


async def available_credits(session: AsyncSession, account_id: int) -> int:
    row = await session.execute(
        select(Account.balance - Account.reserved).where(Account.id == account_id)
    )
    return int(row.scalar_one_or_none() or 0)
