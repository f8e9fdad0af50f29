"""A/B campaigns through the engine, on both databases: the test share and its split, the
decision by the scheduler (delivered rate, with the simulator's undeliverable numbers; ties
to the first variant), a manager's decision racing the scheduler and the materializer, the
reservation corrected by a ledger row, and completion only once the remainder is sent. Any
targeting (segments, a filter, exclusions, opt-outs, consent, the frequency cap) reaches
whom the same campaign without variants reaches; with tracked links each variant's
messages carry their own short links, and clicks decide a `uniqueClicks` test."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from clarion.accounts.models import CreditLedger
from clarion.audience.consent import Wanted, set_consents
from clarion.audience.history import Cause
from clarion.audience.models import Contact, ListMember
from clarion.campaigns import variants
from clarion.campaigns.models import Campaign
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery.service import DbReceiptSink
from clarion.links import service as links_service
from clarion.links.models import Link
from clarion.messages.models import Message
from clarion.providers.simulator import SimulatorProvider
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.materialize import materialize_pending
from clarion.sending.scheduler import decide_ab_tests, finalize, tick
from tests.campaigns.conftest import World
from tests.conftest import AccountClient, Api, assert_ledger_consistent
from tests.sending.conftest import (
    FakeProvider,
    assert_partition,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

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


def completed_and_receipted(db: Database, cid: int) -> Any:
    """Completed, and every receipt in: a campaign completes once nothing is queued or in
    flight, and the simulator's receipts for its last batch may still be on their way."""
    is_completed, is_receipted = completed(db, cid), all_receipted(db, cid)

    async def done() -> bool:
        return await is_completed() and await is_receipted()

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
            await run_until(db, dispatcher, completed_and_receipted(db, cid), now=lambda: later)
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
            await run_until(db, dispatcher, completed_and_receipted(db, cid))
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
            await run_until(db, dispatcher, completed_and_receipted(db, cid))
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


def tier(name: str) -> dict[str, Any]:
    return {"field": "attributes.tier", "op": "eq", "value": name}


async def consent(db: Database, contact_ids: list[int], status: str) -> None:
    async with db.transaction() as s:
        wanted = [Wanted(cid, "sms", status) for cid in contact_ids]
        await set_consents(s, wanted, Cause.system("api", "test"), utcnow())


async def sent_an_hour_ago(db: Database, account_id: int, contact_ids: list[int]) -> None:
    """A marketing message of another campaign handed over an hour ago to each contact."""
    earlier = await seed_campaign(db, account_id, [], status="completed")
    async with db.transaction() as s:
        contacts = (await s.execute(select(Contact).where(Contact.id.in_(contact_ids)))).scalars()
        at = utcnow() - timedelta(hours=1)
        await s.execute(
            insert(Message),
            [
                {
                    "campaign_id": earlier,
                    "account_id": account_id,
                    "contact_id": c.id,
                    "phone": c.phone,
                    "country": c.country,
                    "channel": "sms",
                    "status": "delivered",
                    "sent_at": at,
                }
                for c in contacts
            ],
        )


class TestAudience:
    async def test_segments_and_a_filter_reach_whom_a_plain_campaign_reaches(
        self, db: Database, account: AccountClient
    ) -> None:
        await set_rates(db, [("sms", "*", "", PRICE)])
        world = World(db)
        french = await world.new_list(account, "fr")
        left_out = await world.new_list(account, "left out")
        # 48 French contacts in the list (two in three gold), 12 American ones reached
        # through a segment (half gold), 5 gold ones targeted by neither.
        listed = await world.contacts(
            account, [french], [{"attributes": {"tier": "silver" if i % 3 == 0 else "gold"}}
                                for i in range(48)]
        )  # fmt: skip
        american = await world.contacts(
            account, [], [{"country": "US", "attributes": {"tier": "gold" if i % 2 else "silver"}}
                          for i in range(12)]
        )  # fmt: skip
        strangers = await world.contacts(account, [], [{"attributes": {"tier": "gold"}}] * 5)
        gold = [c for i, c in enumerate(listed) if i % 3] + american[1::2]
        assert len(gold) == 38
        excluded, opted, capped = gold[0:3], gold[3:5], gold[5:8]
        denied, never_asked = gold[-1:], gold[8:10]  # an American one, two French ones
        await world.add_members([left_out], excluded)
        await world.opt_out(opted)
        everyone = [*listed, *american, *strangers]
        await consent(db, [c for c in everyone if c not in never_asked + denied], "granted")
        await consent(db, denied, "denied")
        await sent_an_hour_ago(db, account.id, capped)
        rules = {"requireConsent": True, "frequencyCap": {"messages": 1, "periodHours": 24}}
        assert (await account.put("/account/compliance", json=rules)).status_code == 200
        segment = await account.post(
            "/segments",
            json={"name": "us", "filter": {"field": "country", "op": "eq", "value": "US"}},
        )
        targeting = {
            "listIds": [french],
            "segmentIds": [segment.json()["id"]],
            "excludeListIds": [left_out],
            "filter": tier("gold"),
        }
        expected = set(gold) - set(excluded + opted + capped + denied + never_asked)
        assert len(expected) == 27

        plain = await start(
            account, {"name": "plain", "channel": "sms", "message": {"text": SHORT}, **targeting}
        )
        ab = await start(account, ab_body(french) | targeting)
        estimates = [
            (await account.get(f"/campaigns/{cid}")).json()["estimate"] for cid in (plain, ab)
        ]
        for estimate in estimates:
            assert estimate["recipients"] == 27
            assert estimate["excluded"] == {
                "duplicates": 0,
                "optedOut": 2,
                "noConsent": 3,
                "frequencyCapped": 3,
                "invalid": 0,
            }
        assert estimates[1]["abTest"]["testRecipients"] == 14

        await materialize_pending(db, 7)  # several chunks of the plain campaign's audience
        assert {m.contact_id for m in await messages(db, plain)} == expected
        test = await messages(db, ab)
        assert len(test) == variants.test_size(27, 0.5, 2) == 14
        assert {m.contact_id for m in test} <= expected
        assert Counter(m.variant for m in test) == {"A": 7, "B": 7}

        r = await account.put(f"/campaigns/{ab}/abTest/winner", json={"name": "B"})
        assert r.status_code == 200, r.text
        assert await materialize_pending(db, 5) == 13  # the remainder, in chunks
        assert await materialize_pending(db, 5) == 0
        everyone_sent = await messages(db, ab)
        assert len(everyone_sent) == 27 == len({m.contact_id for m in everyone_sent})
        assert {m.contact_id for m in everyone_sent} == expected
        assert Counter(m.variant for m in everyone_sent) == {"A": 7, "B": 20}
        assert {m.contact_id for m in everyone_sent if m.variant == "A"} < {
            m.contact_id for m in test
        }
        c = await assert_partition(db, ab)
        assert (c.recipients, c.queued) == (27, 27)
        await assert_ledger_consistent(db, account.id)


async def links_of(db: Database, cid: int) -> list[tuple[int, str | None, str, str]]:
    """(message id, variant, url, code) of the campaign's links."""
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(Message.id, Message.variant, Link.url, Link.code)
            .join(Link, Link.message_id == Message.id)
            .where(Message.campaign_id == cid)
            .order_by(Message.id, Link.position)
        )
        return [(int(a), b, str(c), str(d)) for a, b, c, d in rows]


BASE = "http://127.0.0.1:8000/l/"
SHORT_LINK = re.compile(re.escape(BASE) + r"([A-Za-z0-9_-]{7})(?![A-Za-z0-9_-])")
URL_A, URL_B, URL_B2 = "https://shop.example/a", "https://shop.example/b", "https://b.example/2"


def variant_clicks(campaign: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """variant -> (recipients, clicks, unique clicks) as the campaign shows them."""
    return {
        v["name"]: (v["stats"]["recipients"], v["stats"]["clicks"], v["stats"]["uniqueClicks"])
        for v in campaign["variants"]
    }


class TestTrackedLinks:
    @pytest.mark.parametrize(
        ("targeting", "draws"), [("lists", "fresh"), ("filter", "fresh"), ("lists", "colliding")]
    )
    async def test_each_variant_sends_its_own_links_and_clicks_pick_the_winner(
        self,
        db: Database,
        api: Api,
        account: AccountClient,
        sms: FakeProvider,
        engine_settings: Settings,
        targeting: str,
        draws: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        if draws == "colliding":
            # Every draw gives all its links one code: one goes in, the others are drawn
            # again, down to the last, in the test share's chunks (each variant's messages)
            # and the remainder's (whose range also holds the test's messages, linked).
            real = links_service.new_codes

            def colliding(count: int) -> list[str]:
                return real(1) * count

            monkeypatch.setattr(links_service, "new_codes", colliding)
        await set_rates(db, [("sms", "*", "", PRICE)])
        names = [f"P{i}" for i in range(8)]
        lst = await seed_contacts(db, account.id, phones(8, start=100), first_names=names)
        body = ab_body(lst, metric="uniqueClicks") | {"trackLinks": True}
        if targeting == "filter":  # the segment/filter path of the materializer
            body["filter"] = {"field": "firstName", "op": "startsWith", "value": "P"}
        body["variants"] = [
            {"name": "A", "message": {"text": "Hi {{firstName}} " + URL_A}},
            {"name": "B", "message": {"text": f"Sale: {URL_B} and {URL_B2}."}},
        ]
        cid = await start(account, body)
        assert await materialize_pending(db, 3) == 4  # the test share: 2 A, 2 B
        made = await links_of(db, cid)
        assert Counter((variant, url) for _, variant, url, _ in made) == {
            ("A", URL_A): 2,
            ("B", URL_B): 2,
            ("B", URL_B2): 2,
        }

        dispatcher = Dispatcher(engine_settings, db, {"sms": sms}, "ab-worker")

        async def test_sent() -> bool:
            return all(m.status == "sent" for m in await messages(db, cid))

        await run_until(db, dispatcher, test_sent)
        codes = {mid: [] for mid, _, _, _ in made}
        for mid, _, _, code in made:
            codes[mid].append(code)
        variant_of = {mid: variant for mid, variant, _, _ in made}
        for m in sms.sent:
            assert SHORT_LINK.findall(m.text or "") == codes[m.id], m.text
            assert "example" not in (m.text or "")
            assert (m.text or "").startswith("Hi P" if variant_of[m.id] == "A" else "Sale: ")

        # One recipient of B follows both links, one of them twice: one unique click.
        clicked = next(mid for mid, variant in variant_of.items() if variant == "B")
        for code, url in zip(
            [*codes[clicked], codes[clicked][0]], [URL_B, URL_B2, URL_B], strict=True
        ):
            r = await api.client.get(f"/l/{code}")
            assert (r.status_code, r.headers["location"]) == (302, url)
        read = (await account.get(f"/campaigns/{cid}")).json()
        assert (read["stats"]["clicks"], read["stats"]["uniqueClicks"]) == (3, 1)
        # Each variant's clicks, beside its messages: the figures the decision compares.
        assert variant_clicks(read) == {"A": (2, 0, 0), "B": (2, 3, 1)}

        # A tie would go to A: B wins on its click rate (1 of 2 against 0 of 2).
        later = utcnow() + LATER
        assert await decide_ab_tests(db, later) == [cid]
        assert (await row(db, cid)).ab_winner == "B"
        await run_until(db, dispatcher, completed(db, cid), now=lambda: later)
        after = await links_of(db, cid)
        assert after[: len(made)] == made  # the test's links are kept, none added to them
        remainder = {mid for mid, _, _, _ in after} - set(codes)
        assert len(remainder) == 4
        assert Counter((variant, url) for mid, variant, url, _ in after if mid in remainder) == {
            ("B", URL_B): 4,
            ("B", URL_B2): 4,
        }
        assert len({code for _, _, _, code in after}) == len(after) == 14
        by_id = {m.id: m.text or "" for m in sms.sent}
        assert set(by_id) == {mid for mid, _, _, _ in after}
        for mid in remainder:
            assert len(SHORT_LINK.findall(by_id[mid])) == 2 and by_id[mid].startswith("Sale: ")
        c = await assert_partition(db, cid)
        assert (c.recipients, c.sent) == (8, 8)
        # The winner's figures now include the remainder's messages (not clicked).
        read = (await account.get(f"/campaigns/{cid}")).json()
        assert variant_clicks(read) == {"A": (2, 0, 0), "B": (6, 3, 1)}
        await assert_ledger_consistent(db, account.id)
