"""`expired`: accepted, no final receipt within CLARION_RECEIPT_TIMEOUT; a late receipt still
applies; part of the stats partition everywhere."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from clarion.campaigns.models import Campaign
from clarion.db.session import Database
from clarion.delivery.service import ingest_receipts
from clarion.messages.models import Message
from clarion.messages.transitions import expire_overdue
from clarion.providers.base import Receipt
from clarion.sending.scheduler import sweep_expired
from tests.conftest import AccountClient
from tests.delivery.conftest import (
    assert_partition,
    campaign_counters,
    message_statuses,
    seed_campaign,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(hours=72)


async def _sent_at(db: Database, campaign_id: int, at: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Message).where(Message.campaign_id == campaign_id).values(sent_at=at)
        )


async def _expire(db: Database, now: datetime, limit: int = 5000) -> int:
    async with db.transaction() as session:
        return await expire_overdue(session, now, TIMEOUT, limit)


class TestExpiry:
    async def test_sent_without_receipt_expires_after_the_timeout(self, db: Database) -> None:
        s = await seed_campaign(db, count=3, test_sends=1)
        await _sent_at(db, s.campaign_id, T0)
        assert await _expire(db, T0 + TIMEOUT - timedelta(seconds=1)) == 0
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"sent"}

        assert await _expire(db, T0 + TIMEOUT + timedelta(seconds=1)) == 4
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"expired"}
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["sent"], counters["expired"]) == (0, 3)  # the test send is not counted
        await assert_partition(db, s.campaign_id)

    async def test_final_statuses_never_expire(self, db: Database) -> None:
        for status in ("delivered", "read", "failed", "queued"):
            s = await seed_campaign(db, count=2, status=status)
            await _sent_at(db, s.campaign_id, T0)
            assert await _expire(db, T0 + 2 * TIMEOUT) == 0
            assert set((await message_statuses(db, s.campaign_id)).values()) == {status}

    async def test_a_late_receipt_still_applies(self, db: Database) -> None:
        s = await seed_campaign(db, count=3)
        await _sent_at(db, s.campaign_id, T0)
        await _expire(db, T0 + TIMEOUT * 2)
        receipts = [
            Receipt("simulator", s.pmid(0), "delivered"),
            Receipt("simulator", s.pmid(1), "failed", error_code="UNDELIV"),
        ]
        async with db.transaction() as session:
            result = await ingest_receipts(session, receipts)
        assert (result.applied, result.parked) == (2, 0)
        statuses = await message_statuses(db, s.campaign_id)
        assert sorted(statuses.values()) == ["delivered", "expired", "failed"]
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["delivered"], counters["failed"], counters["expired"]) == (1, 1, 1)
        await assert_partition(db, s.campaign_id)

    async def test_the_sweep_is_bounded_and_the_loop_finishes_the_backlog(
        self, db: Database
    ) -> None:
        s = await seed_campaign(db, count=5)
        await _sent_at(db, s.campaign_id, T0)
        assert await _expire(db, T0 + 2 * TIMEOUT, limit=2) == 2
        await assert_partition(db, s.campaign_id)
        assert await sweep_expired(db, TIMEOUT.total_seconds(), now=T0 + 2 * TIMEOUT) == 3
        assert (await campaign_counters(db, s.campaign_id))["expired"] == 5
        await assert_partition(db, s.campaign_id)


class TestExpiredInTheApi:
    async def test_expired_in_stats_filter_and_csv(self, db: Database, account: AccountClient):
        async with db.transaction() as session:
            c = Campaign(
                account_id=account.id,
                name="c",
                channel="sms",
                status="completed",
                started_at=T0,
                completed_at=T0,
                recipients=2,
                sent=2,
            )
            session.add(c)
            await session.flush()
            cid = c.id
            await session.execute(
                insert(Message),
                [
                    {
                        "campaign_id": cid,
                        "account_id": account.id,
                        "contact_id": i + 1,
                        "phone": f"+3361200000{i}",
                        "country": "FR",
                        "channel": "sms",
                        "status": "sent",
                        "provider": "simulator",
                        "provider_message_id": f"x-{i}",
                        "sent_at": T0 - (TIMEOUT if i == 0 else timedelta(0)),
                    }
                    for i in range(2)
                ],
            )
        assert await sweep_expired(db, TIMEOUT.total_seconds(), now=T0 + timedelta(hours=1)) == 1

        got = (await account.get(f"/campaigns/{cid}")).json()
        assert (got["stats"]["expired"], got["stats"]["sent"]) == (1, 1)
        stats = (await account.get("/campaigns/stats?from=2026-11-02&to=2026-11-02")).json()
        assert stats["expired"] == 1
        assert stats["byChannel"]["sms"]["expired"] == 1
        assert stats["byDay"][0]["expired"] == 1
        page = (await account.get(f"/campaigns/{cid}/messages?status=expired")).json()
        assert [m["phone"] for m in page["items"]] == ["+33612000000"]
        csv = await account.get(
            f"/campaigns/{cid}/messages?status=expired", headers={"Accept": "text/csv"}
        )
        lines = csv.text.strip().splitlines()
        assert len(lines) == 2 and "expired" in lines[1]
        schema = (await account.get("/openapi.json")).json()
        counters = schema["components"]["schemas"]["CampaignStats"]["properties"]
        assert "expired" in counters
        async with db.session(write=False) as session:
            statuses = (
                await session.execute(select(Message.status).where(Message.campaign_id == cid))
            ).scalars()
            assert sorted(statuses) == ["expired", "sent"]
