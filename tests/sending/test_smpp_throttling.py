"""Long SMS through the engine to an SMSC that throttles like a gateway (a minimum gap between
submits per bind, answered ESME_RTHROTTLED), over a real TCP socket."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from clarion.config import Settings
from clarion.messages.models import Message
from clarion.providers.base import OutboundMessage, Outcome
from clarion.providers.smpp.provider import SmppProvider
from clarion.providers.smpp.smsc import Smsc
from clarion.sending.ratelimit import LimiterPacer, TokenBucket
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    NullSink,
    assert_partition,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

PRICE = 700
LONG = "Hello {{firstName}} " + "x" * 155  # two GSM-7 parts once rendered


@pytest.fixture
async def gateway() -> AsyncIterator[Smsc]:
    smsc = Smsc(credentials={"clarion": "secret"}, seed=3)
    await smsc.start()
    yield smsc
    await smsc.stop()


@pytest.fixture
async def make_smpp(gateway: Smsc) -> AsyncIterator[Any]:
    made: list[SmppProvider] = []

    async def make(**overrides: Any) -> SmppProvider:
        values: dict[str, Any] = {
            "smpp_host": "127.0.0.1",
            "smpp_port": gateway.port,
            "smpp_system_id": "clarion",
            "smpp_password": "secret",
            "smpp_source_addr": "Clarion",
            "smpp_throughput": 1000,  # what we were told; the gateway allows far less
            **overrides,
        }
        provider = SmppProvider(Settings(**values))
        provider.client.backoff_initial = 0.05
        await provider.start(NullSink())
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


def parts_per_message(smsc: Smsc) -> dict[tuple[str, int], Counter[int]]:
    """(destination, concatenation reference) -> how often the SMSC accepted each part."""
    out: dict[tuple[str, int], Counter[int]] = {}
    for s in smsc.submitted:
        udh = s.pdu.short_message[:6]
        out.setdefault((s.pdu.destination_addr, udh[3]), Counter())[udh[5]] += 1
    return out


class TestLongMessagesUnderAGatewayRateLimit:
    async def test_every_part_is_accepted_exactly_once(
        self, db, account, make_dispatcher, make_smpp, gateway
    ):
        gateway.min_gap = 0.01  # 100 submit_sm/s per bind
        provider = await make_smpp()
        await set_rates(db, [("sms", "*", "", PRICE)])
        n = 40
        lst = await seed_contacts(db, account.id, phones(n, start=100), first_names=["Ann"] * n)
        cid = await seed_campaign(db, account.id, [lst], text=LONG, reserve=n * 2 * PRICE)
        dispatcher = make_dispatcher({"sms": provider}, worker_batch_size=n)

        async with asyncio.timeout(60):  # without pacing parts, it never finishes
            await drain(db, dispatcher, [cid])

        assert gateway.throttled > 0  # the gateway did push back
        parts = parts_per_message(gateway)
        assert len(parts) == n
        assert all(counts == Counter({1: 1, 2: 1}) for counts in parts.values()), parts
        c = await assert_partition(db, cid)
        assert (c.status, c.sent, c.failed, c.spent) == ("completed", n, 0, n * 2 * PRICE)
        await assert_ledger_consistent(db, account.id)

    async def test_parts_are_paced_by_the_adaptive_rate(self, make_smpp, gateway):
        """Throttles slow the engine's limiter, and each part waits for it."""
        gateway.min_gap = 0.01
        provider = await make_smpp()
        bucket = TokenBucket(1000)
        provider.use_pacer(LimiterPacer(lambda sender: bucket))
        todo = [
            OutboundMessage(i, "sms", f"+336123{i:05d}", None, text="y" * 200)
            for i in range(100, 130)
        ]
        for _ in range(50):  # what the engine does: a message refused whole goes again
            results = await provider.submit(todo)
            assert {r.outcome for r in results} <= {Outcome.ACCEPTED, Outcome.THROTTLED}
            again = {r.message_id for r in results if r.outcome == Outcome.THROTTLED}
            todo = [m for m in todo if m.id in again]
            if not todo:
                break
        assert not todo
        assert gateway.throttled > 0
        assert bucket.current_rate is not None and bucket.current_rate < 1000
        parts = parts_per_message(gateway)
        assert len(parts) == 30 and all(c == Counter({1: 1, 2: 1}) for c in parts.values())

    async def test_a_part_throttled_too_long_fails_the_message_clearly(self, make_smpp, gateway):
        gateway.min_gap = 3600  # after the first part, nothing more on this bind
        provider = await make_smpp(smpp_part_retry_seconds=0.3)
        [result] = await provider.submit(
            [OutboundMessage(1, "sms", "+33612340010", None, text="z" * 200)]
        )
        assert result.outcome == Outcome.REFUSED
        assert result.error_code == "throttled_too_long"
        assert "part 2 of 2" in (result.error_message or "")
        assert parts_per_message(gateway) == {
            ("33612340010", gateway.submitted[0].pdu.short_message[3]): Counter({1: 1})
        }
        assert gateway.throttled >= 2  # it was retried, alone

    async def test_a_refused_first_part_leaves_the_message_to_the_engine(self, make_smpp, gateway):
        provider = await make_smpp()
        gateway.throttle_next = 1
        [result] = await provider.submit(
            [OutboundMessage(1, "sms", "+33612340010", None, text="z" * 200)]
        )
        assert result.outcome == Outcome.THROTTLED and gateway.submitted == []


class TestThrottledForTooLong:
    async def test_a_message_throttled_whole_for_too_long_fails_clearly(
        self, db, account, make_dispatcher, make_smpp, gateway
    ):
        gateway.throttle_next = 10**9  # a gateway that never lets anything through
        provider = await make_smpp(smpp_throttle_give_up_seconds=0.3)
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(3, start=100), first_names=["A"] * 3)
        cid = await seed_campaign(db, account.id, [lst], text=LONG, reserve=3 * 2 * PRICE)
        async with asyncio.timeout(30):  # without the cap it loops for ever
            await drain(db, make_dispatcher({"sms": provider}), [cid])
        c = await assert_partition(db, cid)
        assert (c.status, c.failed, c.spent) == ("completed", 3, 0)
        assert set(await _codes(db, cid)) == {"throttled_too_long"}
        assert gateway.submitted == []
        await assert_ledger_consistent(db, account.id)


async def _codes(db, campaign_id: int) -> list[str | None]:
    async with db.session(write=False) as s:
        rows = await s.execute(select(Message.error_code).where(Message.campaign_id == campaign_id))
        return list(rows.scalars())
