"""A/B campaigns through the engine, on both databases: the test share and its split, the
decision by the scheduler (delivered rate, with the simulator's undeliverable numbers; ties
to the first variant), a manager's decision racing the scheduler and the materializer, the
reservation corrected by a ledger row, and completion only once the remainder is sent."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from clarion.accounts.models import CreditLedger
from clarion.audience.models import ListMember
from clarion.campaigns.models import Campaign
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery.service import DbReceiptSink
from clarion.messages.models import Message
from clarion.providers.simulator import SimulatorProvider
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.materialize import materialize_pending
from clarion.sending.scheduler import decide_ab_tests, finalize, tick
from tests.conftest import AccountClient, assert_ledger_consistent
from tests.sending.conftest import assert_partition, phones, seed_contacts, set_rates

PRICE = 700  # 0.07 credit per SMS part
LATER = timedelta(minutes=61)
SHORT, LONG = "Hello", "x" * 200  # one part, two parts


def ab_body(list_id: int, **ab: Any) -> dict[str, Any]:
    return {
        "name": "ab",
        "channel": "sms",
        "variants": [
            {"name": "A", "message": {"text": SHORT}},
            {"name": "B", "message": {"text": LONG}},
        ],
        "abTest": {"testShare": 0.5, "metric": "delivered", "decideAfterMinutes": 60} | ab,
        "listIds": [list_id],
    }


async def start(account: AccountClient, body: dict[str, Any]) -> int:
    r = await account.post("/campaigns", json=body)
    assert r.status_code == 201, r.text
    cid = int(r.json()["id"])
    r = await account.put(f"/campaigns/{cid}/confirm", json={})
    assert r.status_code == 200, r.text
    return cid


async def messages(db: Database, cid: int) -> list[Message]:
    async with db.session(write=False) as s:
        rows = await s.execute(select(Message).where(Message.campaign_id == cid))
        return list(rows.scalars())


async def row(db: Database, cid: int) -> Campaign:
    async with db.session(write=False) as s:
        c = await s.get(Campaign, cid, populate_existing=True)
        assert c is not None
        return c


async def releases(db: Database, cid: int) -> list[int]:
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(CreditLedger.reserved_delta).where(
                CreditLedger.campaign_id == cid, CreditLedger.note.like("A/B test decided%")
            )
        )
        return list(rows.scalars())


async def run_until(
    db: Database,
    dispatcher: Dispatcher,
    done: Any,
    *,
    now: Any = None,
    rounds: int = 400,
) -> None:
    """Scheduler ticks (judging A/B tests at `now()`) and batches until `done()`."""
    for _ in range(rounds):
        await tick(db, 50_000, now=now() if now else None)
        if await done():
            return
        batch = await dispatcher.claim()
        if batch:
            await dispatcher.run_batch(batch)
        else:
            await asyncio.sleep(0.02)
    raise AssertionError("the condition was not reached")


def all_receipted(db: Database, cid: int) -> Any:
    async def done() -> bool:
        ms = await messages(db, cid)
        return bool(ms) and all(m.status in ("delivered", "failed") for m in ms)

    return done


def completed(db: Database, cid: int) -> Any:
    async def done() -> bool:
        return (await row(db, cid)).status == "completed"

    return done


async def make_undeliverable(db: Database, cid: int, variant: str) -> None:
    """The variant's test recipients become the simulator's undeliverable numbers (a
    national number ending 0001: accepted, then reported failed)."""
    async with db.transaction() as s:
        ids = (
            await s.execute(
                select(Message.id).where(Message.campaign_id == cid, Message.variant == variant)
            )
        ).scalars()
        for i, mid in enumerate(ids):
            await s.execute(
                update(Message).where(Message.id == mid).values(phone=f"+3369{i:04d}0001")
            )


class TestSplit:
    async def test_the_test_share_is_split_evenly_and_the_rest_waits(
        self, db: Database, account: AccountClient
    ) -> None:
        await set_rates(db, [("sms", "FR", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(101, start=100))
        body = ab_body(lst, testShare=0.3)
        body["variants"].append({"name": "C", "message": {"text": "Hi"}})
        cid = await start(account, body)

        assert await materialize_pending(db, 50_000) == 30  # round(101 * 0.3)
        assert await materialize_pending(db, 50_000) == 0  # queued once
        ms = await messages(db, cid)
        assert Counter(m.variant for m in ms) == {"A": 10, "B": 10, "C": 10}
        picked_ids = sorted(m.contact_id for m in ms)
        assert len(set(picked_ids)) == 30
        async with db.session(write=False) as s:
            members = select(ListMember.contact_id).where(ListMember.list_id == lst)
            everyone = sorted((await s.execute(members)).scalars())
        # Chosen by the seeded hash, not by id: neither the first nor the last 30.
        assert picked_ids not in (everyone[:30], everyone[-30:])
        await finalize(db)
        c = await assert_partition(db, cid)
        assert (c.status, c.recipients, c.queued, c.materialized_at) == ("sending", 30, 30, None)
        assert c.ab_test_at is not None

        # The choice is the seed's: another campaign with the same seed picks the same people.
        again = await start(account, body)
        async with db.transaction() as s:
            await s.execute(update(Campaign).where(Campaign.id == again).values(ab_seed=c.ab_seed))
        await materialize_pending(db, 50_000)
        picked = {m.contact_id: m.variant for m in await messages(db, again)}
        assert picked == {m.contact_id: m.variant for m in ms}


class TestDecision:
    async def _run_test_share(
        self, db: Database, account: AccountClient, fail: str | None, **ab: Any
    ) -> tuple[int, Dispatcher, SimulatorProvider]:
        """Start the campaign, queue its test share (`fail`: that variant's recipients are
        undeliverable) and send it until every receipt is in."""
        await set_rates(db, [("sms", "FR", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(40, start=100))
        cid = await start(account, ab_body(lst, **ab))
        await materialize_pending(db, 50_000)
        if fail is not None:
            await make_undeliverable(db, cid, fail)
        sim = SimulatorProvider("sms", receipt_delay=0.01)
        await sim.start(DbReceiptSink(db))
        dispatcher = Dispatcher(self.engine_settings, db, {"sms": sim}, "ab-worker")
        await run_until(db, dispatcher, all_receipted(db, cid))
        return cid, dispatcher, sim

    async def _decided_after_the_wait(
        self, db: Database, account: AccountClient, fail: str | None, **ab: Any
    ) -> Campaign:
        cid, dispatcher, sim = await self._run_test_share(db, account, fail, **ab)
        try:
            # Handed over and receipted, but decideAfterMinutes has not passed: it waits, and
            # a campaign waiting for its winner does not complete.
            await tick(db, 50_000)
            c = await row(db, cid)
            assert (c.status, c.ab_winner, c.completed_at) == ("sending", None, None)
            later = utcnow() + LATER
            await run_until(db, dispatcher, completed(db, cid), now=lambda: later)
        finally:
            await sim.close()
        c = await assert_partition(db, cid)
        assert c.recipients == 40 and c.ab_decided_at == later
        remainder = [m for m in await messages(db, cid) if m.variant == c.ab_winner]
        assert len(remainder) == 20 + 10  # the remainder, and the winner's test share
        await assert_ledger_consistent(db, account.id)
        return c

    async def test_the_variant_with_the_better_delivered_rate_wins(
        self, db: Database, account: AccountClient, engine_settings: Settings
    ) -> None:
        self.engine_settings = engine_settings
        c = await self._decided_after_the_wait(db, account, fail="A")
        assert c.ab_winner == "B" and c.failed == 10 and c.delivered == 30
        # B is the dearest: the remainder was reserved at its price, nothing to release.
        assert await releases(db, c.id) == []
        assert c.spent == 10 * PRICE + 30 * 2 * PRICE and c.reserved == 0

    async def test_the_cheaper_winner_releases_the_difference(
        self, db: Database, account: AccountClient, engine_settings: Settings
    ) -> None:
        self.engine_settings = engine_settings
        c = await self._decided_after_the_wait(db, account, fail="B")
        assert c.ab_winner == "A" and c.failed == 10
        # Remainder of 20 held at B's 2 parts, sent as A's 1 part: 20 parts released.
        assert await releases(db, c.id) == [-20 * PRICE]
        assert c.spent == 30 * PRICE + 10 * 2 * PRICE and c.reserved == 0

    async def test_a_tie_goes_to_the_first_variant(
        self, db: Database, account: AccountClient, engine_settings: Settings
    ) -> None:
        self.engine_settings = engine_settings
        c = await self._decided_after_the_wait(db, account, fail=None)
        assert (c.ab_winner, c.delivered) == ("A", 40)

    async def test_a_manager_racing_the_scheduler_makes_one_decision(
        self, db: Database, account: AccountClient, engine_settings: Settings
    ) -> None:
        self.engine_settings = engine_settings
        cid, dispatcher, sim = await self._run_test_share(db, account, fail="B")
        url = f"/campaigns/{cid}/abTest/winner"
        later = utcnow() + LATER
        try:
            results = await asyncio.gather(
                account.put(url, json={"name": "B"}),
                decide_ab_tests(db, later),
                materialize_pending(db, 7),
                account.put(url, json={"name": "A"}),
                decide_ab_tests(db, later),
                materialize_pending(db, 7),
            )
            http = [r.status_code for r in results if hasattr(r, "status_code")]
            by_scheduler = sum(len(r) for r in results if isinstance(r, list))
            assert http.count(200) + by_scheduler == 1, (http, by_scheduler)
            assert all(code in (200, 409) for code in http)
            await run_until(db, dispatcher, completed(db, cid))
        finally:
            await sim.close()
        c = await assert_partition(db, cid)
        ms = await messages(db, cid)
        assert c.recipients == len(ms) == len({m.contact_id for m in ms}) == 40
        assert Counter(m.variant for m in ms)[c.ab_winner] == 30
        expected = [-20 * PRICE] if c.ab_winner == "A" else []
        assert await releases(db, cid) == expected
        await assert_ledger_consistent(db, account.id)

    async def test_decided_while_paused_the_remainder_waits_for_resume(
        self, db: Database, account: AccountClient, engine_settings: Settings
    ) -> None:
        self.engine_settings = engine_settings
        cid, dispatcher, sim = await self._run_test_share(db, account, fail=None)
        try:
            assert (await account.put(f"/campaigns/{cid}/pause")).status_code == 200
            r = await account.put(f"/campaigns/{cid}/abTest/winner", json={"name": "B"})
            assert r.status_code == 200, r.text
            assert await materialize_pending(db, 50_000) == 0
            await finalize(db)
            assert (await row(db, cid)).status == "paused"
            assert (await account.put(f"/campaigns/{cid}/resume")).status_code == 200
            await run_until(db, dispatcher, completed(db, cid))
        finally:
            await sim.close()
        read = (await account.get(f"/campaigns/{cid}")).json()
        assert read["abTest"]["winner"] == "B"
        assert [v["stats"]["recipients"] for v in read["variants"]] == [10, 30]
        assert read["variants"][1]["stats"]["delivered"] == 30
        items = (await account.get(f"/campaigns/{cid}/messages?limit=100")).json()["items"]
        assert Counter(i["variant"] for i in items) == {"A": 10, "B": 30}
        async with db.session(write=False) as s:
            total = (await s.execute(select(func.count()).select_from(Message))).scalar_one()
        assert total == 40
        await assert_ledger_consistent(db, account.id)


class TestDecidedBeforeTheTest:
    async def test_the_whole_audience_gets_the_winner(
        self, db: Database, account: AccountClient
    ) -> None:
        await set_rates(db, [("sms", "FR", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(12, start=100))
        cid = await start(account, ab_body(lst))
        r = await account.put(f"/campaigns/{cid}/abTest/winner", json={"name": "B"})
        assert r.status_code == 200, r.text
        assert await materialize_pending(db, 5) == 12
        ms = await messages(db, cid)
        assert Counter(m.variant for m in ms) == {"B": 12}
        read = (await account.get(f"/campaigns/{cid}")).json()
        assert read["abTest"]["testStartedAt"] is None
        assert [v["stats"]["queued"] for v in read["variants"]] == [0, 12]
        await assert_ledger_consistent(db, account.id)
