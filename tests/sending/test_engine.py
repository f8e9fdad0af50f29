"""The engine on both backends, with a scriptable in-process provider."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from clarion.accounts.models import Account
from clarion.audience.history import Cause
from clarion.audience.optouts import opt_out
from clarion.campaigns import service as campaigns_service
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.messages.models import Message
from clarion.providers.base import Outcome, SubmitResult
from clarion.sending import materialize as materialize_module
from clarion.sending import scheduler as scheduler_module
from clarion.sending.engine import Engine
from clarion.sending.materialize import materialize, materialize_chunk
from clarion.sending.scheduler import finalize, start_due, sweep_leases, tick
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    FakeProvider,
    assert_partition,
    campaign,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

PRICE = 700  # 0.07 credit per SMS part


async def _balance(db, account_id: int) -> tuple[int, int]:
    async with db.session(write=False) as s:
        a = await s.get(Account, account_id, populate_existing=True)
        return a.balance, a.reserved


async def _messages(db, campaign_id: int) -> list[Message]:
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
        )
        return list(rows.scalars())


class TestMaterialize:
    async def test_audience_is_union_minus_exclusions_and_opt_outs(self, db, account):
        a = await seed_contacts(db, account.id, phones(6), list_name="a")
        b = await seed_contacts(db, account.id, phones(6, start=3), list_name="b")  # 3 shared
        x = await seed_contacts(db, account.id, phones(1, start=8), list_name="x")
        async with db.transaction() as s:
            ids = dict((await s.execute(select(Message.id).limit(0))).all())  # noqa: F841
            from clarion.audience.models import Contact

            opted = (
                await s.execute(select(Contact.id).where(Contact.phone == phones(1, start=0)[0]))
            ).scalar_one()
            await opt_out(s, [opted], "sms", Cause.system("api", "test"))
        cid = await seed_campaign(db, account.id, [a, b], exclude_list_ids=[x])
        assert await materialize(db, cid, chunk=2) == 9 - 1 - 1
        c = await assert_partition(db, cid)
        assert (c.recipients, c.queued) == (7, 7)
        assert c.materialized_at is not None
        got = sorted(m.phone for m in await _messages(db, cid))
        assert got == sorted(set(phones(9)) - {phones(1)[0], phones(1, start=8)[0]})

    async def test_an_interrupted_run_resumes_without_duplicates(self, db, account):
        lst = await seed_contacts(db, account.id, phones(10))
        cid = await seed_campaign(db, account.id, [lst])

        async with db.transaction() as s:  # one chunk committed
            await materialize_chunk(s, cid, 4, utcnow())
        with pytest.raises(RuntimeError):  # the next chunk dies half way: it rolls back whole
            async with db.transaction() as s:
                assert (await materialize_chunk(s, cid, 3, utcnow())) is not None
                raise RuntimeError("killed")
        assert len(await _messages(db, cid)) == 4
        assert await materialize(db, cid, chunk=3) == 6
        c = await assert_partition(db, cid)
        assert c.recipients == 10
        assert len(await _messages(db, cid)) == 10

    async def test_a_lost_progress_marker_cannot_duplicate_a_recipient(self, db, account):
        lst = await seed_contacts(db, account.id, phones(6))
        cid = await seed_campaign(db, account.id, [lst])
        async with db.transaction() as s:
            await materialize_chunk(s, cid, 4, utcnow())
        async with db.transaction() as s:  # only a hand edit could do this
            await s.execute(
                update(Campaign).where(Campaign.id == cid).values(materialized_through=None)
            )
        with pytest.raises(IntegrityError):  # the unique (campaign, contact) is the backstop
            async with db.transaction() as s:
                await materialize_chunk(s, cid, 4, utcnow())
        assert len(await _messages(db, cid)) == 4

    async def test_the_first_chunk_is_small_then_chunks_double(self, db, account, monkeypatch):
        """The first messages are queued after a small insert, not a full-size one."""
        lst = await seed_contacts(db, account.id, phones(300))
        cid = await seed_campaign(db, account.id, [lst])
        sizes = []

        async def recorded(session, campaign_id, chunk, now):
            sizes.append(chunk)
            return await materialize_chunk(session, campaign_id, chunk, now)

        monkeypatch.setattr(materialize_module, "FIRST_CHUNK", 100)
        monkeypatch.setattr(materialize_module, "materialize_chunk", recorded)
        assert await materialize(db, cid, chunk=250) == 300
        assert sizes == [100, 200, 250]  # the third finds nobody after 300: done

    async def test_paused_or_cancelled_campaigns_are_not_materialized(self, db, account):
        lst = await seed_contacts(db, account.id, phones(3))
        cid = await seed_campaign(db, account.id, [lst], status="paused")
        assert await materialize(db, cid, chunk=10) == 0
        assert (await campaign(db, cid)).recipients == 0


class TestMaterializeConcurrently:
    """Materializers of one campaign take turns on its row: each recipient exactly once."""

    async def test_two_materializers_at_once_make_each_recipient_once(self, db, account):
        lst = await seed_contacts(db, account.id, phones(40))
        cid = await seed_campaign(db, account.id, [lst])
        made = await asyncio.gather(*(materialize(db, cid, chunk=3) for _ in range(3)))
        c = await assert_partition(db, cid)
        assert sum(made) == c.recipients == 40
        assert await materialize(db, cid, chunk=3) == 0
        assert c.materialized_at is not None
        assert len({m.contact_id for m in await _messages(db, cid)}) == 40


class TestSendCampaign:
    async def test_campaign_completes_charged_exactly(self, db, account, make_dispatcher, sms):
        await set_rates(db, [("sms", "FR", "", PRICE), ("sms", "*", "", 900)])
        lst = await seed_contacts(db, account.id, phones(30), first_names=["Ann"] * 30)
        long_text = "Hello {{firstName}} " + "x" * 155  # 2 parts once rendered
        cid = await seed_campaign(
            db, account.id, [lst], text=long_text, reserve=30 * 2 * PRICE + 5000
        )
        await drain(db, make_dispatcher(), [cid])

        c = await assert_partition(db, cid)
        assert (c.status, c.sent, c.recipients, c.reserved) == ("completed", 30, 30, 0)
        assert c.spent == 30 * 2 * PRICE
        assert c.completed_at is not None
        balance, reserved = await _balance(db, account.id)
        assert (balance, reserved) == (1000 * 10_000 - c.spent, 0)
        msgs = await _messages(db, cid)
        assert {m.units for m in msgs} == {2} and {m.price for m in msgs} == {2 * PRICE}
        assert all(m.provider_message_id == f"fake-{m.id}" and m.sent_at for m in msgs)
        assert sms.sent[0].text.startswith("Hello Ann ")
        assert sorted(sms.accepted.values()) == [1] * 30
        await assert_ledger_consistent(db, account.id)

    async def test_refused_and_unpriced_messages_fail_and_cost_nothing(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "FR", "", PRICE)])
        fr = await seed_contacts(db, account.id, phones(4), list_name="fr")
        us = await seed_contacts(db, account.id, ["+12025550123"], country="US", list_name="us")
        refused = phones(1)[0]
        sms.script = lambda m, n: (
            SubmitResult(m.id, Outcome.REFUSED, error_code="invalid_number", error_message="no")
            if m.to == refused
            else None
        )
        cid = await seed_campaign(db, account.id, [fr, us], text="Hi", reserve=5 * PRICE)
        await drain(db, make_dispatcher(), [cid])
        c = await assert_partition(db, cid)
        assert (c.sent, c.failed, c.spent) == (3, 2, 3 * PRICE)
        codes = {m.phone: m.error_code for m in await _messages(db, cid)}
        assert codes[refused] == "invalid_number"
        assert codes["+12025550123"] == "no_rate"
        await assert_ledger_consistent(db, account.id)


class TestRetries:
    async def test_transient_errors_retry_then_succeed_once(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(10))
        sms.script = lambda m, n: (
            SubmitResult(m.id, Outcome.RETRY, error_code="http_500") if n <= 2 else None
        )
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=10 * PRICE)
        await drain(db, make_dispatcher(), [cid])
        c = await assert_partition(db, cid)
        assert (c.sent, c.spent) == (10, 10 * PRICE)
        assert {m.attempts for m in await _messages(db, cid)} == {3}
        await assert_ledger_consistent(db, account.id)

    async def test_gives_up_after_max_attempts_with_the_provider_code(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(3))
        sms.script = lambda m, n: SubmitResult(m.id, Outcome.RETRY, error_code="http_503")
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=3 * PRICE)
        await drain(db, make_dispatcher(worker_max_attempts=3), [cid])
        c = await assert_partition(db, cid)
        assert (c.failed, c.spent, c.reserved) == (3, 0, 0)
        msgs = await _messages(db, cid)
        assert {(m.error_code, m.attempts) for m in msgs} == {("http_503", 3)}
        assert await _balance(db, account.id) == (1000 * 10_000, 0)
        await assert_ledger_consistent(db, account.id)

    async def test_throttles_do_not_count_as_attempts(self, db, account, make_dispatcher, sms):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(4))
        sms.script = lambda m, n: (
            SubmitResult(m.id, Outcome.THROTTLED, retry_after=0.01) if n <= 2 else None
        )
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=4 * PRICE)
        await drain(db, make_dispatcher(worker_max_attempts=2), [cid])
        c = await assert_partition(db, cid)
        assert c.sent == 4
        assert {m.attempts for m in await _messages(db, cid)} == {1}


class TestCredits:
    async def test_missing_credits_fail_messages_never_the_balance(self, db, api, make_dispatcher):
        poor = await api.new_account("poor", credits=0.5)  # 5000 units: 7 messages at 700
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, poor.id, phones(10))
        cid = await seed_campaign(db, poor.id, [lst], text="Hi", reserve=3 * PRICE)
        await drain(db, make_dispatcher(), [cid])
        c = await assert_partition(db, cid)
        assert (c.sent, c.failed) == (7, 3)
        assert c.spent == 7 * PRICE
        failed = [m for m in await _messages(db, cid) if m.status == "failed"]
        assert {m.error_code for m in failed} == {"insufficient_credits"}
        assert {m.price for m in failed} == {0}
        assert await _balance(db, poor.id) == (5000 - 7 * PRICE, 0)
        await assert_ledger_consistent(db, poor.id)


class TestLeases:
    async def test_expired_leases_requeue_and_a_late_result_is_not_recorded_twice(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(5))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=5 * PRICE)
        await tick(db, 1000)
        slow = make_dispatcher(owner="slow")
        batch = await slow.claim()
        assert len(batch) == 5
        c = await assert_partition(db, cid)
        assert c.sending == 5
        async with db.transaction() as s:  # the slow worker's lease runs out
            await s.execute(update(Message).values(lease_until=utcnow() - timedelta(seconds=1)))
        assert await sweep_leases(db) == 5
        assert (await assert_partition(db, cid)).queued == 5
        await drain(db, make_dispatcher(owner="fast"), [cid])
        recorded = await slow.run_batch(batch)  # the slow worker finally answers
        assert recorded == []
        c = await assert_partition(db, cid)
        assert (c.sent, c.spent) == (5, 5 * PRICE)
        assert set(sms.submits.values()) == {2}  # handed over twice,
        assert set(sms.accepted.values()) == {1}  # sent once: deduplicated by message id
        await assert_ledger_consistent(db, account.id)


class TestFairness:
    async def test_a_big_campaign_does_not_starve_a_small_one(self, db, api, make_dispatcher):
        big_acct = await api.new_account("big", credits=1000)
        small_acct = await api.new_account("small", credits=1000)
        await set_rates(db, [("sms", "*", "", 1)])
        big_list = await seed_contacts(db, big_acct.id, phones(1000))
        small_list = await seed_contacts(db, small_acct.id, phones(20, prefix="+3362"))
        big = await seed_campaign(db, big_acct.id, [big_list], text="Hi", reserve=1000)
        await tick(db, 50_000)
        small = await seed_campaign(db, small_acct.id, [small_list], text="Hi", reserve=20)
        await tick(db, 50_000)
        d = make_dispatcher()
        first = await d.claim(100)
        by_campaign = {cid: sum(1 for m in first if m.campaign_id == cid) for cid in (big, small)}
        assert by_campaign == {big: 80, small: 20}
        await d.run_batch(first)
        await tick(db, 50_000)
        assert (await campaign(db, small)).status == "completed"
        assert (await campaign(db, big)).sent == 80

    async def test_campaigns_of_one_account_share_its_turn(self, db, api, make_dispatcher):
        a = await api.new_account("a", credits=1000)
        b = await api.new_account("b", credits=1000)
        await set_rates(db, [("sms", "*", "", 1)])
        ids = []
        for i in range(3):
            lst = await seed_contacts(db, a.id, phones(100, start=i * 100), list_name=f"a{i}")
            ids.append(await seed_campaign(db, a.id, [lst], text="Hi", reserve=100))
        lst = await seed_contacts(db, b.id, phones(100), list_name="b")
        b_id = await seed_campaign(db, b.id, [lst], text="Hi", reserve=100)
        await tick(db, 50_000)
        batch = await make_dispatcher().claim(60)
        got = sum(1 for m in batch if m.campaign_id == b_id)
        assert got == 30  # half the batch for account b, the other half shared by a's three


class TestControls:
    async def test_paused_campaigns_are_not_claimed_and_resume(self, db, account, make_dispatcher):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(5))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=5 * PRICE)
        await tick(db, 1000)
        async with db.transaction() as s:
            await s.execute(update(Campaign).where(Campaign.id == cid).values(status="paused"))
        d = make_dispatcher()
        assert await d.claim() == []
        await finalize(db)
        assert (await campaign(db, cid)).status == "paused"
        async with db.transaction() as s:
            await s.execute(update(Campaign).where(Campaign.id == cid).values(status="sending"))
        await drain(db, d, [cid])
        assert (await campaign(db, cid)).sent == 5

    async def test_cancelled_campaign_releases_its_reservation(self, db, account, make_dispatcher):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(5))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=5 * PRICE)
        await tick(db, 1000)
        d = make_dispatcher()
        batch = await d.claim(2)
        async with db.transaction() as s:
            await campaigns_service.cancel(s, account.id, cid)
        await finalize(db)  # two messages still in flight: nothing released yet
        assert (await campaign(db, cid)).reserved == 5 * PRICE
        await d.run_batch(batch)
        await finalize(db)
        c = await assert_partition(db, cid)
        assert (c.sent, c.skipped, c.reserved, c.spent) == (2, 3, 0, 2 * PRICE)
        assert c.status == "cancelled" and c.completed_at is not None  # closed once settled
        assert await _balance(db, account.id) == (1000 * 10_000 - 2 * PRICE, 0)
        await assert_ledger_consistent(db, account.id)

    async def test_due_scheduled_campaigns_start_once(self, db, account):
        lst = await seed_contacts(db, account.id, phones(2))
        due = await seed_campaign(
            db, account.id, [lst], status="scheduled", scheduled_at=utcnow() - timedelta(seconds=1)
        )
        later = await seed_campaign(
            db, account.id, [lst], status="scheduled", scheduled_at=utcnow() + timedelta(hours=1)
        )
        results = await asyncio.gather(start_due(db), start_due(db))
        assert sorted(results[0] + results[1]) == [due]
        c = await campaign(db, due)
        assert c.status == "sending" and c.started_at is not None
        assert (await campaign(db, later)).status == "scheduled"


class TestRcsFallback:
    async def test_no_rcs_falls_back_to_sms_priced_as_sms(self, db, account, make_dispatcher, sms):
        await set_rates(db, [("sms", "*", "", PRICE), ("rcs", "*", "basic", 300)])
        rcs = FakeProvider("rcs", name="fake-rcs")
        nums = phones(4)
        rcs.no_rcs = {nums[0]}
        lst = await seed_contacts(db, account.id, nums)
        with_fb = await seed_campaign(
            db,
            account.id,
            [lst],
            channel="rcs",
            text="Hi",
            fallback_channel="sms",
            reserve=4 * PRICE,
        )
        d = make_dispatcher({"sms": sms, "rcs": rcs})
        await drain(db, d, [with_fb])
        msgs = {m.phone: m for m in await _messages(db, with_fb)}
        assert (msgs[nums[0]].channel, msgs[nums[0]].price, msgs[nums[0]].status) == (
            "sms",
            PRICE,
            "sent",
        )
        assert {msgs[p].channel for p in nums[1:]} == {"rcs"}
        assert {msgs[p].price for p in nums[1:]} == {300}
        c = await assert_partition(db, with_fb)
        assert c.spent == PRICE + 3 * 300

    async def test_without_fallback_it_fails_with_a_clear_code(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("rcs", "*", "basic", 300)])
        rcs = FakeProvider("rcs", name="fake-rcs")
        rcs.capabilities.rcs_capability_check = True
        nums = phones(3)
        rcs.no_rcs = {nums[2]}
        lst = await seed_contacts(db, account.id, nums)
        cid = await seed_campaign(db, account.id, [lst], channel="rcs", text="Hi", reserve=900)
        await drain(db, make_dispatcher({"sms": sms, "rcs": rcs}), [cid])
        msgs = {m.phone: m for m in await _messages(db, cid)}
        assert (msgs[nums[2]].status, msgs[nums[2]].error_code) == ("failed", "rcs_unavailable")
        assert nums[2] not in {m.to for m in rcs.sent}
        await assert_ledger_consistent(db, account.id)


class TestEmbeddedEngine:
    async def test_engine_loops_send_a_campaign_and_stop_cleanly(
        self, db, account, engine_settings, sms
    ):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(300))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=300 * PRICE)
        engine = Engine(
            engine_settings.model_copy(update={"scheduler_interval": 0.05}),
            db,
            providers={"sms": sms},
        )
        await engine.start()
        try:
            for _ in range(400):
                if (await campaign(db, cid)).status == "completed":
                    break
                await asyncio.sleep(0.05)
        finally:
            await engine.stop()
        c = await assert_partition(db, cid)
        assert (c.status, c.sent) == ("completed", 300)
        await assert_ledger_consistent(db, account.id)

    async def test_stop_gives_unfinished_leases_back(self, db, account, engine_settings):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(20))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=20 * PRICE)
        hang = asyncio.Event()

        class Hanging(FakeProvider):
            async def submit(self, batch):
                hang.set()
                await asyncio.sleep(3600)
                return []

        engine = Engine(
            engine_settings.model_copy(update={"scheduler_interval": 0.05}),
            db,
            providers={"sms": Hanging()},
        )
        await engine.start()
        await asyncio.wait_for(hang.wait(), 20)
        await engine.stop(timeout=1.0)
        c = await assert_partition(db, cid)
        assert (c.sending, c.queued) == (0, 20)

    async def test_stop_lets_a_step_finish_its_transaction(
        self, db, account, engine_settings, sms, monkeypatch
    ):
        # A cancelled transaction can lose its connection with the transaction open (on
        # SQLite, the write lock held for as long as the process lives): the engine tells
        # its loops to stop and lets the step under way finish.
        started, finished = asyncio.Event(), []

        async def slow_step(db, _clock):
            async with db.transaction() as s:
                await s.execute(update(Account).values(name="renamed"))
                started.set()
                await asyncio.sleep(0.3)
            finished.append(True)

        monkeypatch.setattr(scheduler_module, "start_due", slow_step)
        # No sending lanes: on SQLite they would wait for the step's lock anyway, and the
        # engine would look patient for that reason alone.
        engine = Engine(engine_settings, db, providers={"sms": sms}, sender=False)
        await engine.start()
        await asyncio.wait_for(started.wait(), 10)
        await engine.stop()
        assert finished == [True]
        assert await open_transactions(db) == 0
        async with db.session(write=False) as s:
            assert (await s.get(Account, account.id)).name == "renamed"


async def open_transactions(db) -> int:
    """Transactions that other connections hold open on the test's database."""
    if db.is_sqlite:
        path = make_url(db.url).database
        probe = sqlite3.connect(path, timeout=1.0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return 1  # the write lock is held
        finally:
            probe.close()
        return 0
    async with db.session(write=False) as s:
        return (
            await s.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            )
        ).scalar_one()


class TestConcurrentClaims:
    async def test_two_claimers_never_share_a_message(self, db, account, make_dispatcher):
        await set_rates(db, [("sms", "*", "", PRICE)])
        lst = await seed_contacts(db, account.id, phones(400))
        cid = await seed_campaign(db, account.id, [lst], text="Hi", reserve=400 * PRICE)
        await tick(db, 50_000)
        a, b = make_dispatcher(owner="a"), make_dispatcher(owner="b")
        batches = await asyncio.gather(*(d.claim(60) for d in (a, b, a, b)))
        ids = [m.id for batch in batches for m in batch]
        assert len(ids) == len(set(ids)) == 240
        c = await assert_partition(db, cid)
        assert (c.sending, c.queued) == (240, 160)


class TestWhatsAppTemplates:
    async def test_template_parameters_and_category_price(self, db, account, make_dispatcher):
        from clarion.templates.models import Template

        await set_rates(
            db,
            [("whatsapp", "*", "marketing", 500), ("whatsapp", "*", "utility", 200)],
        )
        async with db.transaction() as s:
            t = Template(
                account_id=account.id,
                name="order_update",
                channel="whatsapp",
                language="fr",
                category="utility",
                body="Hello {{firstName}}, order {{order}} ships today",
                status="approved",
                variables=["firstName", "order"],
            )
            s.add(t)
            await s.flush()
            template_id = t.id
        lst = await seed_contacts(db, account.id, phones(2), first_names=["Ann", None])
        wa = FakeProvider("whatsapp", name="fake-wa")
        cid = await seed_campaign(
            db,
            account.id,
            [lst],
            channel="whatsapp",
            message={
                "templateId": template_id,
                "templateParams": {"order": "A-17", "firstName": "there"},
            },
            reserve=2 * 200,
        )
        await drain(db, make_dispatcher({"whatsapp": wa}), [cid])
        sent = sorted(wa.sent, key=lambda m: m.id)
        assert [(m.template.name, m.template.language, m.template.category) for m in sent] == [
            ("order_update", "fr", "utility")
        ] * 2
        assert [m.template.parameters for m in sent] == [["Ann", "A-17"], ["there", "A-17"]]
        c = await assert_partition(db, cid)
        assert (c.sent, c.spent) == (2, 400)
        await assert_ledger_consistent(db, account.id)

    async def test_no_category_is_priced_alike_by_the_estimate_and_the_sender(
        self, db, account, make_dispatcher
    ):
        from clarion.templates.models import Template

        # a template stored without a category (as an earlier sync did)
        await set_rates(db, [("whatsapp", "*", "", 100), ("whatsapp", "*", "marketing", 500)])
        async with db.transaction() as s:
            t = Template(
                account_id=account.id,
                name="legacy",
                channel="whatsapp",
                language="en",
                category=None,
                body="Hello",
                status="approved",
                variables=[],
            )
            s.add(t)
            await s.flush()
            template_id = t.id
        lst = await seed_contacts(db, account.id, phones(2))
        message = {"templateId": template_id}
        draft = await account.post(
            "/campaigns",
            json={"name": "w", "channel": "whatsapp", "message": message, "listIds": [lst]},
        )
        assert draft.status_code == 201, draft.text
        estimate = await account.post(f"/campaigns/{draft.json()['id']}/calculateGoal")
        assert estimate.status_code == 200, estimate.text
        assert estimate.json()["price"] == 0.1  # 2 x 0.05: the marketing row
        wa = FakeProvider("whatsapp", name="fake-wa")
        cid = await seed_campaign(
            db, account.id, [lst], channel="whatsapp", message=message, reserve=2 * 500
        )
        await drain(db, make_dispatcher({"whatsapp": wa}), [cid])
        c = await assert_partition(db, cid)
        assert (c.sent, c.spent) == (2, 1000)
        await assert_ledger_consistent(db, account.id)
