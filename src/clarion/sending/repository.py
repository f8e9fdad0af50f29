"""What the engine reads besides messages: which campaigns may have work, what an account
can still spend. (Message changes are the named transitions of `messages/transitions.py`.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account
from clarion.audience.models import ContactConsent
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime
from clarion.messages.models import CampaignTally, Message

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


async def cancelled_ids(session: AsyncSession, campaign_ids: Sequence[int]) -> set[int]:
    """Which of these campaigns are cancelled (their throttled or retried messages are not
    requeued: they become `skipped`)."""
    if not campaign_ids:
        return set()
    rows = await session.execute(
        select(Campaign.id).where(
            Campaign.id.in_(sorted(set(campaign_ids))), Campaign.status == "cancelled"
        )
    )
    return set(rows.scalars())


@dataclass(slots=True)
class ReplyContent:
    text: str
    sender: str | None


async def reply_contents(session: AsyncSession, ids: Sequence[int]) -> dict[int, ReplyContent]:
    """What messages of no campaign say, and who they are from."""
    rows = await session.execute(
        select(Message.id, Message.text, Message.sender).where(Message.id.in_(list(ids)))
    )
    return {int(i): ReplyContent(text or "", sender) for i, text, sender in rows}


async def without_consent(
    session: AsyncSession, contact_ids: Sequence[int], channel: str
) -> set[int]:
    """Those of the contacts that do not grant consent for the channel (now)."""
    ids = sorted(set(contact_ids))
    granted: set[int] = set()
    for start in range(0, len(ids), 900):
        rows = await session.execute(
            select(ContactConsent.contact_id).where(
                ContactConsent.contact_id.in_(ids[start : start + 900]),
                ContactConsent.channel == channel,
                ContactConsent.status == "granted",
            )
        )
        granted.update(rows.scalars())
    return set(ids) - granted
