"""The in-process simulator provider: magic numbers, dedupe, receipts through the sink."""

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from clarion.config import Settings
from clarion.db.session import Database
from clarion.delivery.service import DbReceiptSink, apply_parked
from clarion.messages.models import Message
from clarion.messages.tally import move
from clarion.providers import registry
from clarion.providers.base import (
    InboundMessage,
    OutboundMessage,
    Outcome,
    Provider,
    ProviderConfigError,
    Receipt,
)
from clarion.providers.registry import build_providers
from clarion.providers.simulator import IdSet, SimulatorProvider
from clarion.providers.simulator_http import HttpSimulatorProvider
from tests.delivery.conftest import assert_partition, message_statuses, seed_campaign


class CollectingSink:
    """A ReceiptSink that keeps what it is given (and can fail the first pushes)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.receipts_seen: list[Receipt] = []
        self.inbound_seen: list[InboundMessage] = []
        self.fail_first = fail_first
        self.arrived = asyncio.Event()

    async def receipts(self, items: Sequence[Receipt]) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("database is down")
        self.receipts_seen.extend(items)
        self.arrived.set()

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        self.inbound_seen.extend(items)


def msg(i: int, to: str, channel: str = "sms") -> OutboundMessage:
    return OutboundMessage(id=i, channel=channel, to=to, sender="Clarion", text="hi")


async def wait_for_receipts(sink: CollectingSink, count: int) -> None:
    async with asyncio.timeout(10):
        while len(sink.receipts_seen) < count:
            sink.arrived.clear()
            await sink.arrived.wait()


class TestMagicNumbers:
    async def test_outcomes_and_receipts(self) -> None:
        sink = CollectingSink()
        provider = SimulatorProvider("sms", receipt_delay=0.01)
        await provider.start(sink)
        try:
            results = await provider.submit(
                [msg(1, "+33612345678"), msg(2, "+33612340000"), msg(3, "+33612340001")]
            )
            by_id = {r.message_id: r for r in results}
            assert by_id[1].outcome is Outcome.ACCEPTED and by_id[1].provider_message_id == "sim-1"
            assert (by_id[2].outcome, by_id[2].error_code) == (Outcome.REFUSED, "SIM_REFUSED")
            assert by_id[2].provider_message_id is None
            assert by_id[3].outcome is Outcome.ACCEPTED
            await wait_for_receipts(sink, 2)
            await asyncio.sleep(0.05)  # nothing more comes for SMS (no `read`)
            got = {(r.provider_message_id, r.status, r.error_code) for r in sink.receipts_seen}
            assert got == {("sim-1", "delivered", None), ("sim-3", "failed", "SIM_UNDELIVERABLE")}
        finally:
            await provider.close()

    async def test_whatsapp_and_rcs_are_read_after_delivered(self) -> None:
        for channel in ("whatsapp", "rcs"):
            sink = CollectingSink()
            provider = SimulatorProvider(channel, receipt_delay=0.01)
            await provider.start(sink)
            await provider.submit([msg(7, "+447700900123", channel)])
            await wait_for_receipts(sink, 2)
            assert [r.status for r in sink.receipts_seen] == ["delivered", "read"]
            await provider.close()

    async def test_0002_has_no_rcs(self) -> None:
        provider = SimulatorProvider("rcs", receipt_delay=0.01)
        await provider.start(CollectingSink())
        caps = await provider.check_capability(["+33612340002", "+33612345678"])
        assert caps == {"+33612340002": False, "+33612345678": True}
        [result] = await provider.submit([msg(1, "+33612340002", "rcs")])
        assert result.outcome is Outcome.NO_CAPABILITY and result.error_code == "SIM_NO_RCS"
        sms = SimulatorProvider("sms")
        assert await sms.check_capability(["+33612340002"]) == {"+33612340002": True}
        [result] = await sms.submit([msg(2, "+33612340002")])  # SMS to it is fine
        assert result.outcome is Outcome.ACCEPTED
        await provider.close()


class TestDedupe:
    async def test_second_submit_of_an_id_is_the_same_message(self) -> None:
        sink = CollectingSink()
        provider = SimulatorProvider("sms", receipt_delay=0.01)
        await provider.start(sink)
        first = await provider.submit([msg(5, "+33612345678"), msg(6, "+33612345679")])
        again = await provider.submit([msg(5, "+33612345678")])
        assert again[0].outcome is Outcome.ACCEPTED
        assert again[0].provider_message_id == first[0].provider_message_id == "sim-5"
        stats = provider.stats()
        assert (stats["acceptedIds"], stats["duplicates"], stats["submits"]) == (2, 1, 3)
        await wait_for_receipts(sink, 2)
        await asyncio.sleep(0.05)
        assert sorted(r.provider_message_id for r in sink.receipts_seen) == ["sim-5", "sim-6"]
        await provider.close()

    async def test_a_failing_sink_is_retried(self) -> None:
        sink = CollectingSink(fail_first=2)
        provider = SimulatorProvider("sms", receipt_delay=0.0)
        await provider.start(sink)
        await provider.submit([msg(1, "+33612345678")])
        await wait_for_receipts(sink, 1)
        assert [r.status for r in sink.receipts_seen] == ["delivered"]
        await provider.close()


class TestClose:
    async def test_a_push_under_way_finishes_and_waiting_receipts_are_dropped(self) -> None:
        # A push is a database transaction in the real sink: cancelling it half-way could
        # lose its connection with the transaction open, so close lets it finish.
        class SlowSink(CollectingSink):
            async def receipts(self, items: Sequence[Receipt]) -> None:
                self.arrived.set()
                await asyncio.sleep(0.3)
                self.receipts_seen.extend(items)

        sink = SlowSink()
        provider = SimulatorProvider("sms", receipt_delay=0.0)
        await provider.start(sink)
        await provider.submit([msg(1, "+33612345678")])
        await asyncio.wait_for(sink.arrived.wait(), 10)
        provider.receipt_delay = 3600.0
        await provider.submit([msg(2, "+33612345679")])  # its receipt waits for an hour
        await asyncio.wait_for(provider.close(), 3)
        assert [r.provider_message_id for r in sink.receipts_seen] == ["sim-1"]


class TestThroughTheDatabase:
    async def test_receipts_before_the_submit_is_recorded_are_parked_then_applied(
        self, db: Database
    ) -> None:
        s = await seed_campaign(db, count=3, status="sending", record_provider_ids=False)
        sink = DbReceiptSink(db)
        provider = SimulatorProvider("sms", receipt_delay=0.0)
        await provider.start(sink)
        phones = ["+33612345678", "+33612340001", "+33612340000"]
        results = await provider.submit(
            [msg(i, p) for i, p in zip(s.message_ids, phones, strict=True)]
        )
        # Receipts race the submit transaction: wait until they have all been parked.
        async with asyncio.timeout(10):
            while sink.totals.parked < 2:
                await asyncio.sleep(0.01)
        # What the dispatcher does: record the results, then apply what was parked.
        async with db.transaction() as session:
            deltas = {"sending": -3, "sent": 0, "failed": 0}
            for result in results:
                accepted = result.outcome is Outcome.ACCEPTED
                await session.execute(
                    update(Message)
                    .where(Message.id == result.message_id)
                    .values(
                        status="sent" if accepted else "failed",
                        provider_message_id=result.provider_message_id,
                        error_code=result.error_code,
                    )
                )
                deltas["sent" if accepted else "failed"] += 1
            await move(session, s.campaign_id, deltas)
            ids = [r.provider_message_id for r in results if r.provider_message_id]
            assert await apply_parked(session, "simulator", ids) == 2
        statuses = await message_statuses(db, s.campaign_id)
        assert [statuses[i] for i in s.message_ids] == ["delivered", "failed", "failed"]
        await assert_partition(db, s.campaign_id)
        await provider.close()


class TestRegistry:
    def test_simulator_everywhere_by_default(self) -> None:
        providers = build_providers(Settings(simulator_receipt_delay=0.5))
        assert set(providers) == {"sms", "whatsapp", "rcs"}
        for channel, provider in providers.items():
            assert isinstance(provider, SimulatorProvider) and isinstance(provider, Provider)
            assert provider.channel == channel and provider.receipt_delay == 0.5
            assert provider.capabilities.idempotent_submit
            assert provider.capabilities.rcs_capability_check

    def test_simulator_url_selects_the_http_simulator(self) -> None:
        providers = build_providers(
            Settings(simulator_url="http://127.0.0.1:9/", public_url="http://api.test")
        )
        sms = providers["sms"]
        assert isinstance(sms, HttpSimulatorProvider) and isinstance(sms, Provider)
        assert sms.url == "http://127.0.0.1:9"
        assert sms.callback_url == "http://api.test/webhooks/simulator"

    def test_unavailable_provider_is_a_config_error(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setattr(registry, "FACTORIES", {("sms", "simulator"): registry.build_simulator})
        with pytest.raises(ProviderConfigError) as raised:
            build_providers(Settings())
        assert "whatsapp" in str(raised.value) and "rcs" in str(raised.value)
        assert "sms" not in str(raised.value)


class TestIdSet:
    @given(st.lists(st.integers(min_value=0, max_value=2**40), max_size=200))
    def test_behaves_as_a_set(self, values: list[int]) -> None:
        ids, reference = IdSet(), set()
        for v in values:
            assert ids.add(v) == (v not in reference)
            reference.add(v)
        assert len(ids) == len(reference)
        assert list(ids) == sorted(reference)
        assert all(v in ids for v in reference)
        assert -1 not in ids and "1" not in ids

    def test_a_million_sequential_ids_stay_small(self) -> None:
        ids = IdSet()
        for v in range(1, 1_000_001):
            ids.add(v)
        assert len(ids) == 1_000_000
        assert len(ids._pages) * 4096 < 200_000  # bytes
