"""Refunds: a charged message that its provider then reports failed and does not bill.

Credits are charged when a provider accepts a message. Some providers bill only what they
deliver (Meta bills WhatsApp per delivered message; error 131049, the per-user marketing
limit, comes after acceptance): a `failed` receipt marked `refund` gives the price back, in
the receipt's transaction: one `refund` ledger row per account and campaign, the message's
price set to 0 (it was not paid for in the end), the campaign's `spent` lowered.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.messages import tally, transitions


async def refund_messages(session: AsyncSession, message_ids: Sequence[int], now: datetime) -> int:
    """Refund what these messages were charged (each once). Returns the amount refunded."""
    if not message_ids:
        return 0
    charged = await transitions.take_back_charges(session, message_ids, now)
    per_campaign: dict[tuple[int, int | None], int] = defaultdict(int)
    counted: dict[int, int] = defaultdict(int)
    for c in charged:
        per_campaign[(c.account_id, c.campaign_id)] += c.price
        # A test send or a message of no campaign was never part of a campaign's spend.
        if c.contact_id is not None and c.campaign_id is not None:
            counted[c.campaign_id] += c.price
    for campaign_id in sorted(counted):  # appended: no campaign row is locked
        await tally.move(session, campaign_id, {}, spent=-counted[campaign_id])
    for (account_id, of_campaign), amount in sorted(
        per_campaign.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)
    ):
        await ledger.refund(
            session, account_id, of_campaign, amount, note="not billed by the provider"
        )
    return sum(per_campaign.values())
