"""Delivery fixtures: a campaign whose messages are already recorded as sent."""

from dataclasses import dataclass

import pytest
from sqlalchemy import String, cast, insert, literal, select, update

from clarion.accounts.service import create_account
from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.db.session import Database
from clarion.messages.models import Message

PHONE_BASE = 33612000000


@dataclass
class Seeded:
    campaign_id: int
    account_id: int
    message_ids: list[int]

    def pmid(self, index: int) -> str:
        return f"sim-{self.message_ids[index]}"


async def seed_campaign(
    db: Database,
    *,
    count: int,
    status: str = "sent",
    channel: str = "sms",
    test_sends: int = 0,
    provider: str = "simulator",
    record_provider_ids: bool = True,
) -> Seeded:
    """A `sending` campaign with `count` recipients in `status` (plus `test_sends` test
    messages, contact_id NULL, outside the counters), provider ids `sim-<id>`."""
    async with db.transaction() as session:
        account, _ = await create_account(session, "acme", 0)
        campaign = Campaign(
            account_id=account.id,
            name="c",
            channel=channel,
            status="sending",
            recipients=count,
            **{status: count},
        )
        session.add(campaign)
        await session.flush()
        rows = [
            {
                "campaign_id": campaign.id,
                "account_id": account.id,
                "contact_id": (i + 1) if i < count else None,
                "phone": f"+{PHONE_BASE + i}",
                "country": "FR",
                "channel": channel,
                "status": status,
                "provider": provider,
            }
            for i in range(count + test_sends)
        ]
        await session.execute(insert(Message), rows)
        ids = list(
            (
                await session.execute(
                    select(Message.id)
                    .where(Message.campaign_id == campaign.id)
                    .order_by(Message.id)
                )
            ).scalars()
        )
        if record_provider_ids:
            await session.execute(
                update(Message)
                .where(Message.campaign_id == campaign.id)
                .values(provider_message_id=literal("sim-") + cast(Message.id, String))
            )
        return Seeded(campaign.id, account.id, ids)


async def campaign_counters(db: Database, campaign_id: int) -> dict[str, int]:
    """The counters as of now: the campaign row plus its tallies not folded yet."""
    async with db.session(write=False) as session:
        c = await session.get(Campaign, campaign_id)
        assert c is not None
        live = counters.live(c, (await counters.pending(session, [campaign_id])).get(campaign_id))
        return {
            s: live[s]
            for s in (
                "recipients",
                "queued",
                "sending",
                "sent",
                "delivered",
                "read",
                "failed",
                "skipped",
            )
        }


async def message_statuses(db: Database, campaign_id: int) -> dict[int, str]:
    async with db.session(write=False) as session:
        rows = await session.execute(
            select(Message.id, Message.status).where(Message.campaign_id == campaign_id)
        )
        return {r.id: r.status for r in rows}


async def assert_partition(db: Database, campaign_id: int) -> None:
    """The counters equal a GROUP BY of the campaign's (non-test) messages and add up."""
    kept = await campaign_counters(db, campaign_id)
    async with db.session(write=False) as session:
        rows = await session.execute(
            select(Message.status).where(
                Message.campaign_id == campaign_id, Message.contact_id.is_not(None)
            )
        )
        actual: dict[str, int] = {}
        for (status,) in rows:
            actual[status] = actual.get(status, 0) + 1
    recipients = kept.pop("recipients")
    assert {k: v for k, v in kept.items() if v} == actual
    assert sum(kept.values()) == recipients


@pytest.fixture
def seed(db: Database):  # type: ignore[no-untyped-def]
    async def make(**kwargs) -> Seeded:  # type: ignore[no-untyped-def]
        return await seed_campaign(db, **kwargs)

    return make
