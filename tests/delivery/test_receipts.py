"""Receipt ingestion: monotonic transitions, duplicates, out of order, parked receipts."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from clarion.campaigns.models import Campaign
from clarion.db.session import Database
from clarion.delivery.models import ReceiptEvent
from clarion.delivery.service import (
    DbReceiptSink,
    apply_parked,
    ingest_receipts,
    sweep_parked,
)
from clarion.messages.models import Message
from clarion.messages.tally import move
from clarion.providers.base import InboundMessage, Receipt
from clarion.sending import scheduler
from tests.delivery.conftest import (
    assert_partition,
    campaign_counters,
    message_statuses,
    seed_campaign,
)


def r(pmid: str, status: str, **kwargs: object) -> Receipt:
    return Receipt("simulator", pmid, status, **kwargs)  # type: ignore[arg-type]


async def ingest(db: Database, receipts: list[Receipt]):  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        return await ingest_receipts(session, receipts)


class TestInOrder:
    async def test_delivered_then_read_moves_counters(self, db: Database) -> None:
        s = await seed_campaign(db, count=3, channel="whatsapp")
        result = await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(1), "delivered")])
        assert (result.applied, result.unchanged, result.parked) == (2, 0, 0)
        await ingest(db, [r(s.pmid(0), "read")])
        counters = await campaign_counters(db, s.campaign_id)
        assert counters == {
            "recipients": 3, "queued": 0, "sending": 0, "sent": 1,
            "delivered": 1, "read": 1, "failed": 0, "skipped": 0, "expired": 0,
        }  # fmt: skip
        await assert_partition(db, s.campaign_id)
        async with db.session(write=False) as session:
            m = await session.get(Message, s.message_ids[0])
            assert m is not None and m.read_at is not None and m.delivered_at is not None
            assert await session.scalar(select(func.count()).select_from(ReceiptEvent)) == 3

    async def test_a_read_keeps_the_delivery_time_and_records_its_own(self, db: Database) -> None:
        """Each receipt's time lands in its own column: a later `read` sets `read_at` and
        leaves `delivered_at` as the delivery receipt said; a `read` with no delivery before
        it stands for both."""
        s = await seed_campaign(db, count=2, channel="whatsapp")
        delivered, read = (
            datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
            datetime(2026, 5, 1, 9, 7, tzinfo=UTC),
        )
        await ingest(db, [r(s.pmid(0), "delivered", occurred_at=delivered)])
        await ingest(
            db, [r(s.pmid(0), "read", occurred_at=read), r(s.pmid(1), "read", occurred_at=read)]
        )
        async with db.session(write=False) as session:
            first = await session.get(Message, s.message_ids[0])
            second = await session.get(Message, s.message_ids[1])
            assert first is not None and second is not None
            assert (first.status, first.delivered_at, first.read_at) == ("read", delivered, read)
            assert (second.status, second.delivered_at, second.read_at) == ("read", read, read)


class TestRawEvents:
    async def test_every_receipt_is_stored_as_received(self, db: Database) -> None:
        """The raw event keeps each field of its receipt in its own column, matched or not
        (PostgreSQL writes a chunk as arrays: a column taken for another would show here)."""
        s = await seed_campaign(db, count=1)
        occurred = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
        failed = Receipt(
            "simulator", s.pmid(0), "failed", "E42", "unreachable", occurred, '{"x": 1}', True
        )
        await ingest(db, [failed, r("unknown-id", "delivered")])
        async with db.session(write=False) as session:
            events = list(
                (await session.execute(select(ReceiptEvent).order_by(ReceiptEvent.id))).scalars()
            )
        stored = [
            (
                e.provider,
                e.provider_message_id,
                e.status,
                e.error_code,
                e.error_message,
                e.raw,
                e.occurred_at,
                e.refund,
                e.message_id,
            )
            for e in events
        ]
        assert stored == [
            ("simulator", s.pmid(0), "failed", "E42", "unreachable", '{"x": 1}', occurred, True,
             s.message_ids[0]),
            ("simulator", "unknown-id", "delivered", None, None, None, None, False, None),
        ]  # fmt: skip
        assert all(e.received_at is not None and e.received_at > occurred for e in events)


class TestAfterCompletion:
    async def test_late_receipts_still_move_a_completed_campaign(self, db: Database) -> None:
        """A campaign completes when nothing is queued or in flight; receipts that come
        later still update its counters, and its status stays completed."""
        s = await seed_campaign(db, count=2)
        async with db.transaction() as session:
            await session.execute(
                update(Campaign).where(Campaign.id == s.campaign_id).values(status="completed")
            )
        await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(1), "failed", error_code="X")])
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["sent"], counters["delivered"], counters["failed"]) == (0, 1, 1)
        await assert_partition(db, s.campaign_id)
        async with db.session(write=False) as session:
            assert (await session.get(Campaign, s.campaign_id)).status == "completed"


class TestDuplicatesAndOrder:
    async def test_duplicates_change_nothing(self, db: Database) -> None:
        s = await seed_campaign(db, count=2)
        await ingest(db, [r(s.pmid(0), "delivered")])
        result = await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(0), "delivered")])
        assert (result.applied, result.unchanged) == (0, 2)
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["sent"], counters["delivered"]) == (1, 1)
        await assert_partition(db, s.campaign_id)

    async def test_duplicates_within_one_batch_count_once(self, db: Database) -> None:
        s = await seed_campaign(db, count=1)
        result = await ingest(db, [r(s.pmid(0), "delivered")] * 3)
        assert (result.applied, result.unchanged) == (1, 2)
        await assert_partition(db, s.campaign_id)

    async def test_read_before_delivered_ends_read(self, db: Database) -> None:
        s = await seed_campaign(db, count=2, channel="rcs")
        await ingest(db, [r(s.pmid(0), "read")])
        await ingest(db, [r(s.pmid(0), "delivered")])
        await ingest(db, [r(s.pmid(1), "read"), r(s.pmid(1), "delivered")])
        statuses = await message_statuses(db, s.campaign_id)
        assert set(statuses.values()) == {"read"}
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["sent"], counters["delivered"], counters["read"]) == (0, 0, 2)
        await assert_partition(db, s.campaign_id)

    async def test_failed_never_overrides_delivered_or_read(self, db: Database) -> None:
        s = await seed_campaign(db, count=2)
        await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(1), "read")])
        await ingest(db, [r(s.pmid(0), "failed"), r(s.pmid(1), "failed")])
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"delivered", "read"}
        await assert_partition(db, s.campaign_id)

    async def test_failed_is_final_and_records_the_error(self, db: Database) -> None:
        s = await seed_campaign(db, count=1)
        await ingest(
            db, [r(s.pmid(0), "failed", error_code="SIM_UNDELIVERABLE", error_message="gone")]
        )
        await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(0), "read")])
        async with db.session(write=False) as session:
            m = await session.get(Message, s.message_ids[0])
            assert m is not None
            assert (m.status, m.error_code, m.error_message) == (
                "failed",
                "SIM_UNDELIVERABLE",
                "gone",
            )
            assert m.delivered_at is None
        await assert_partition(db, s.campaign_id)

    async def test_sent_receipt_is_a_no_op(self, db: Database) -> None:
        s = await seed_campaign(db, count=1, status="delivered")
        result = await ingest(db, [r(s.pmid(0), "sent")])
        assert result.unchanged == 1
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"delivered"}

    async def test_another_providers_receipt_does_not_match(self, db: Database) -> None:
        s = await seed_campaign(db, count=1)
        result = await ingest(db, [Receipt("twilio", s.pmid(0), "delivered")])
        assert result.parked == 1
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"sent"}


class TestTestSends:
    async def test_test_messages_move_no_counters(self, db: Database) -> None:
        s = await seed_campaign(db, count=2, test_sends=2)
        await ingest(db, [r(s.pmid(i), "delivered") for i in range(4)])
        statuses = await message_statuses(db, s.campaign_id)
        assert set(statuses.values()) == {"delivered"}
        counters = await campaign_counters(db, s.campaign_id)
        assert (counters["recipients"], counters["sent"], counters["delivered"]) == (2, 0, 2)
        await assert_partition(db, s.campaign_id)


class TestParked:
    async def test_receipt_before_submit_is_recorded_is_parked_then_applied(
        self, db: Database
    ) -> None:
        s = await seed_campaign(db, count=3, status="sending", record_provider_ids=False)
        result = await ingest(db, [r(s.pmid(0), "delivered"), r(s.pmid(1), "failed")])
        assert result.parked == 2
        # The dispatcher records the submit results, then applies what was parked.
        async with db.transaction() as session:
            await session.execute(
                update(Message)
                .where(Message.id.in_(s.message_ids[:2]))
                .values(status="sent", provider_message_id=None)
            )
            for i in range(2):
                await session.execute(
                    update(Message)
                    .where(Message.id == s.message_ids[i])
                    .values(provider_message_id=s.pmid(i))
                )
            await move(session, s.campaign_id, {"sending": -2, "sent": 2})
            assert await apply_parked(session, "simulator", [s.pmid(0), s.pmid(1)]) == 2
        statuses = await message_statuses(db, s.campaign_id)
        assert [statuses[i] for i in s.message_ids] == ["delivered", "failed", "sending"]
        await assert_partition(db, s.campaign_id)
        async with db.transaction() as session:  # applying twice changes nothing
            assert await apply_parked(session, "simulator", [s.pmid(0), s.pmid(1)]) == 0
        await assert_partition(db, s.campaign_id)

    async def test_message_still_sending_keeps_its_receipt_parked(self, db: Database) -> None:
        # The provider id is known but the dispatcher has not recorded `sent` yet.
        s = await seed_campaign(db, count=1, status="sending")
        result = await ingest(db, [r(s.pmid(0), "delivered")])
        assert result.parked == 1
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"sending"}

    async def test_sweep_applies_what_apply_parked_missed(self, db: Database) -> None:
        s = await seed_campaign(db, count=2, status="sending")
        await ingest(db, [r(s.pmid(0), "read"), r(s.pmid(1), "delivered"), r("sim-x", "read")])
        async with db.transaction() as session:
            await session.execute(
                update(Message).where(Message.campaign_id == s.campaign_id).values(status="sent")
            )
            await move(session, s.campaign_id, {"sending": -2, "sent": 2})
        async with db.transaction() as session:
            assert await sweep_parked(session) == 2
        async with db.transaction() as session:
            assert await sweep_parked(session) == 0  # the unknown id stays parked
            parked = await session.scalar(
                select(func.count())
                .select_from(ReceiptEvent)
                .where(ReceiptEvent.message_id.is_(None))
            )
            assert parked == 1
        statuses = await message_statuses(db, s.campaign_id)
        assert sorted(statuses.values()) == ["delivered", "read"]
        await assert_partition(db, s.campaign_id)


class TestSweeper:
    async def test_the_scheduler_round_applies_parked_receipts(self, db: Database) -> None:
        s = await seed_campaign(db, count=1, status="sending")
        await ingest(db, [r(s.pmid(0), "delivered")])
        async with db.transaction() as session:
            await session.execute(update(Message).values(status="sent"))
            await move(session, s.campaign_id, {"sending": -1, "sent": 1})
        assert await scheduler.sweep_parked(db) == 1
        assert (await message_statuses(db, s.campaign_id))[s.message_ids[0]] == "delivered"
        await assert_partition(db, s.campaign_id)


class TestSink:
    async def test_concurrent_pushes_are_coalesced_and_all_applied(self, db: Database) -> None:
        s = await seed_campaign(db, count=40)
        sink = DbReceiptSink(db)
        await asyncio.gather(*(sink.receipts([r(s.pmid(i), "delivered")]) for i in range(40)))
        assert sink.totals.applied == 40
        assert sink.transactions < 40
        assert set((await message_statuses(db, s.campaign_id)).values()) == {"delivered"}
        await assert_partition(db, s.campaign_id)

    async def test_inbound_reaches_the_hook(self, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        from clarion.delivery import inbound

        seen: list[InboundMessage] = []

        async def hook(session, items):  # type: ignore[no-untyped-def]
            seen.extend(items)

        monkeypatch.setattr(inbound, "handle_inbound", hook)
        item = InboundMessage("simulator", "sms", "+33612345678", "STOP")
        await DbReceiptSink(db).inbound([item])
        assert seen == [item]


class TestParkedRace:
    async def test_a_receipt_that_raced_the_submit_commit_is_applied_by_the_next_round(
        self, db: Database
    ) -> None:
        # The dispatcher already ran apply_parked in its transaction; the receipt parked
        # just before that transaction committed.
        s = await seed_campaign(db, count=2, status="sending")
        result = await ingest(db, [r(s.pmid(0), "delivered"), r("sim-unknown", "read")])
        assert result.parked_ids == [("simulator", s.pmid(0)), ("simulator", "sim-unknown")]
        async with db.transaction() as session:  # ... and now it has committed
            await session.execute(
                update(Message).where(Message.id == s.message_ids[0]).values(status="sent")
            )
            await move(session, s.campaign_id, {"sending": -1, "sent": 1})
        # The next round applies the receipt; the unknown id stays parked.
        assert await scheduler.sweep_parked(db) == 1
        assert await scheduler.sweep_parked(db) == 0
        async with db.transaction() as session:
            assert await apply_parked(session, "simulator", [s.pmid(0)]) == 0
        statuses = await message_statuses(db, s.campaign_id)
        assert statuses[s.message_ids[0]] == "delivered"
        await assert_partition(db, s.campaign_id)

    async def test_what_the_sink_parked_is_applied_by_the_next_round(self, db: Database) -> None:
        s = await seed_campaign(db, count=1, status="sending")
        sink = DbReceiptSink(db)
        await sink.receipts([r(s.pmid(0), "failed", error_code="E")])
        assert sink.totals.parked == 1
        async with db.transaction() as session:
            await session.execute(update(Message).values(status="sent"))
            await move(session, s.campaign_id, {"sending": -1, "sent": 1})
        assert await scheduler.sweep_parked(db) == 1
        assert (await message_statuses(db, s.campaign_id))[s.message_ids[0]] == "failed"
        await assert_partition(db, s.campaign_id)
