"""Cancelling a campaign while its provider throttles: what comes back is skipped, never
requeued, and the cancelled campaign is closed (`completed_at`) once nothing is in flight."""

from __future__ import annotations

from sqlalchemy import select, update

from clarion.campaigns import service as campaigns_service
from clarion.messages import tally
from clarion.messages.models import Message
from clarion.providers.base import Outcome, SubmitResult
from clarion.sending.scheduler import finalize, tick
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

PRICE = 700


async def _messages(db, campaign_id: int) -> list[Message]:
    async with db.session(write=False) as s:
        rows = await s.execute(select(Message).where(Message.campaign_id == campaign_id))
        return list(rows.scalars())


class TestCancelWhileThrottled:
    async def test_throttled_messages_of_a_cancelled_campaign_are_skipped(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(6, start=100))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=6 * PRICE)
        sms.script = lambda m, n: SubmitResult(m.id, Outcome.THROTTLED, error_code="0x00000058")
        await tick(db, 1000)
        d = make_dispatcher()
        batch = await d.claim(4)
        async with db.transaction() as s:  # cancelled while the batch is with the provider
            await campaigns_service.cancel(s, account.id, cid)
        await d.run_batch(batch)
        await finalize(db)

        c = await assert_partition(db, cid)
        assert (c.status, c.queued, c.sending, c.skipped, c.sent) == ("cancelled", 0, 0, 6, 0)
        assert c.completed_at is not None and c.reserved == 0
        msgs = await _messages(db, cid)
        assert {(m.status, m.error_code) for m in msgs} == {("skipped", "CANCELLED")}
        assert await d.claim() == []
        await assert_ledger_consistent(db, account.id)

    async def test_a_message_requeued_just_after_the_cancel_is_skipped_by_finalize(
        self, db, account, make_dispatcher
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(3, start=100))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=3 * PRICE)
        await tick(db, 1000)
        batch = await make_dispatcher().claim(1)
        async with db.transaction() as s:
            await campaigns_service.cancel(s, account.id, cid)
        # The race: a worker records its throttled message as queued after the cancel.
        async with db.transaction() as s:
            await s.execute(
                update(Message)
                .where(Message.id == batch[0].id)
                .values(status="queued", lease_owner=None, lease_until=None)
            )
            await tally.move(s, cid, {"sending": -1, "queued": 1})
        await finalize(db)

        c = await assert_partition(db, cid)
        assert (c.status, c.queued, c.skipped, c.reserved) == ("cancelled", 0, 3, 0)
        assert c.completed_at is not None
        await assert_ledger_consistent(db, account.id)

    async def test_a_cancel_with_nothing_in_flight_completes_at_once(self, db, account):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(2, start=100))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=2 * PRICE)
        await tick(db, 1000)
        async with db.transaction() as s:
            c = await campaigns_service.cancel(s, account.id, cid)
            assert c.completed_at is not None and c.reserved == 0
