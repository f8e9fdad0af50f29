"""Retention: the rows of campaigns finished longer ago than CLARION_RETENTION_DAYS are
deleted in bounded batches; the campaigns' counters, cost and stats stay as they were; a
campaign still sending, or finished recently, is not touched."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.transactions import in_transaction
from clarion.delivery.models import ReceiptEvent
from clarion.delivery.service import ingest_in_transaction
from clarion.links import clicks
from clarion.links.models import Click, Link
from clarion.messages.models import Message
from clarion.operations import retention
from clarion.providers.base import Receipt
from clarion.sending import scheduler
from clarion.sending.dispatcher import Dispatcher
from tests.conftest import AccountClient
from tests.sending.conftest import (
    FakeProvider,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

DAYS = 30
# Not `\b`: a code may end with "-", and "-" before a space is no word boundary.
SHORT = re.compile(r"/l/([A-Za-z0-9_-]{7})(?![A-Za-z0-9_-])")


async def _rows(db, cid: int) -> tuple[int, int]:
    """(messages, raw receipts) of the campaign."""
    async with db.session(write=False) as s:
        ids = select(Message.id).where(Message.campaign_id == cid)
        pmids = select(Message.provider_message_id).where(Message.campaign_id == cid)
        messages = (await s.execute(select(func.count()).select_from(ids.subquery()))).scalar()
        receipts = (
            await s.execute(select(func.count()).where(ReceiptEvent.provider_message_id.in_(pmids)))
        ).scalar()
    return int(messages or 0), int(receipts or 0)


async def _receipts(db, cid: int, status: str) -> None:
    async with db.session(write=False) as s:
        pmids = list(
            (
                await s.execute(
                    select(Message.provider_message_id).where(
                        Message.campaign_id == cid, Message.provider_message_id.is_not(None)
                    )
                )
            ).scalars()
        )
    await ingest_in_transaction(db, [Receipt("fake", p, status) for p in pmids])


async def _finished_at(db, cid: int, when) -> None:
    async with db.transaction() as s:
        await s.execute(update(Campaign).where(Campaign.id == cid).values(completed_at=when))


async def _views(account, ids):
    """What the API says of the campaigns: each one, and the account's stats."""
    one = {}
    for cid in ids:
        body = (await account.get(f"/campaigns/{cid}")).json()
        one[cid] = (body["status"], body["stats"], body["cost"], body["completedAt"])
    stats = (await account.get("/campaigns/stats")).json()
    return one, stats


class TestRetention:
    async def test_deletes_old_finished_campaigns_rows_only(self, db, make_api, settings):
        api = await make_api()
        account = await api.new_account("acme", credits=1000)
        await set_rates(db, [("sms", "*", "", 700)])
        provider = FakeProvider("sms")
        dispatcher = Dispatcher(settings, db, {"sms": provider}, "w")
        old_list = await seed_contacts(db, account.id, phones(250), list_name="old")
        new_list = await seed_contacts(db, account.id, phones(20, 1000), list_name="new")
        old = await seed_campaign(db, account.id, [old_list], reserve=250 * 700)
        recent = await seed_campaign(db, account.id, [new_list], reserve=20 * 700)
        await drain(db, dispatcher, [old, recent])
        await _receipts(db, old, "delivered")
        await _receipts(db, recent, "delivered")
        # still sending, started long ago (its rows must stay whatever its age)
        live_list = await seed_contacts(db, account.id, phones(5, 2000), list_name="live")
        live = await seed_campaign(db, account.id, [live_list], reserve=5 * 700)
        await scheduler.tick(db, 1000)
        await scheduler.fold_counters(db)
        now = utcnow()
        await _finished_at(db, old, now - timedelta(days=DAYS + 1))
        await _finished_at(db, recent, now - timedelta(days=DAYS - 1))
        async with db.transaction() as s:
            await s.execute(
                update(Campaign)
                .where(Campaign.id == live)
                .values(started_at=now - timedelta(days=90))
            )
        assert await _rows(db, old) == (250, 250)
        before = await _views(account, [old, recent, live])

        done = await retention.purge_expired(db, DAYS, batch=100, now=now, pause=0)

        assert done.campaigns == [old]
        assert done.rows == {"message": 250, "receipt_event": 250}
        assert done.batches == 3  # 100 + 100 + 50: bounded, one transaction each
        assert await _rows(db, old) == (0, 0)
        assert await _rows(db, recent) == (20, 20)
        assert (await _rows(db, live))[0] == 5
        assert await _views(account, [old, recent, live]) == before
        async with db.session(write=False) as s:
            purged = (
                await s.execute(select(Campaign.purged_at).where(Campaign.id == old))
            ).scalar()
        assert purged == now

        # nothing more to do until the recent one is old enough; then only it goes
        assert (await retention.purge_expired(db, DAYS, batch=100, now=now)).campaigns == []
        later = now + timedelta(days=2)
        done = await retention.purge_expired(db, DAYS, batch=100, now=later, pause=0)
        assert done.campaigns == [recent] and done.rows["message"] == 20
        assert (await _rows(db, live))[0] == 5
        assert await _views(account, [old, recent, live]) == before

    async def test_a_cancelled_campaign_once_closed(self, db, make_api, settings):
        api = await make_api()
        account = await api.new_account("acme", credits=1000)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(12))
        cid = await seed_campaign(db, account.id, [lst], reserve=12 * 700)
        await scheduler.tick(db, 1000)
        dispatcher = Dispatcher(settings, db, {"sms": FakeProvider("sms")}, "w")
        batch = await dispatcher.claim(5)  # in flight while it is cancelled
        r = await account.put(f"/campaigns/{cid}/cancel")
        assert r.status_code == 200, r.text
        now = utcnow() + timedelta(days=DAYS + 1)
        await _finished_at(db, cid, utcnow())  # even with a completed_at: not closed yet
        assert (await retention.purge_expired(db, DAYS, now=now)).campaigns == []
        assert await _rows(db, cid) == (12, 0)
        await dispatcher.run_batch(batch)
        await scheduler.finalize(db)  # nothing in flight: closed, reservation released
        before = await _views(account, [cid])
        assert before[0][cid][1]["sent"] == 5
        done = await retention.purge_expired(db, DAYS, now=now, pause=0)
        assert done.campaigns == [cid] and done.rows == {"message": 12}
        assert await _rows(db, cid) == (0, 0)
        assert await _views(account, [cid]) == before

    async def test_engine_runs_it_when_configured(self, db, make_api):
        api = await make_api(
            sender_enabled=True, retention_days=DAYS, retention_interval=0.05, retention_batch=100
        )
        account = await api.new_account("acme", credits=1000)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(3))
        cid = await seed_campaign(db, account.id, [lst], reserve=3 * 700)
        for _ in range(400):
            c = (await account.get(f"/campaigns/{cid}")).json()
            final = c["stats"]["delivered"] + c["stats"]["read"] + c["stats"]["failed"]
            if c["status"] == "completed" and final == 3:
                break
            await _sleep()
        before = await _views(account, [cid])
        await _finished_at(db, cid, utcnow() - timedelta(days=DAYS + 1))
        before[0][cid] = (*before[0][cid][:3], (await _views(account, [cid]))[0][cid][3])
        for _ in range(400):
            if (await _rows(db, cid))[0] == 0:
                break
            await _sleep()
        assert await _rows(db, cid) == (0, 0)
        assert await _views(account, [cid]) == before


async def _tracked(
    db, settings, account: AccountClient, provider: FakeProvider, n: int, name: str
) -> int:
    """A campaign of `n` recipients with two tracked links each, created over HTTP and sent."""
    lst = await seed_contacts(db, account.id, phones(n, len(provider.sent)), list_name=name)
    r = await account.post(
        "/campaigns",
        json={"name": name, "channel": "sms", "listIds": [lst], "trackLinks": True,
              "message": {"text": "Sale https://shop.example/a and https://shop.example/b"}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    cid = int(r.json()["id"])
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    await drain(db, Dispatcher(settings, db, {"sms": provider}, "w"), [cid])
    return cid


async def _link_rows(db, cid: int) -> tuple[int, int, int]:
    """(messages, links, clicks) of the campaign."""
    async with db.session(write=False) as s:
        out = []
        for model in (Message, Link, Click):
            count = select(func.count()).where(model.campaign_id == cid)
            out.append(int((await s.execute(count)).scalar_one()))
    return out[0], out[1], out[2]


class TestTrackedLinks:
    async def test_links_and_clicks_go_in_bounded_batches_the_click_stats_stay(
        self, db, make_api, settings
    ):
        api = await make_api()
        account = await api.new_account("acme", credits=1000)
        await set_rates(db, [("sms", "*", "", 700)])
        provider = FakeProvider("sms")
        old = await _tracked(db, settings, account, provider, 6, "old")
        codes = {m.id: SHORT.findall(m.text or "") for m in provider.sent}
        recent = await _tracked(db, settings, account, provider, 2, "recent")
        recent_code = SHORT.findall(provider.sent[-1].text or "")[0]
        first, second = sorted(codes)[:2]
        # 8 clicks: 5 + 1 on one recipient's two links, 2 on another's; 1 on the recent one
        for code in [codes[first][0]] * 5 + [codes[first][1]] + [codes[second][0]] * 2:
            assert (await api.client.get(f"/l/{code}")).status_code == 302
        assert (await api.client.get(f"/l/{recent_code}")).status_code == 302
        now = utcnow()
        await _finished_at(db, old, now - timedelta(days=DAYS + 1))
        await _finished_at(db, recent, now - timedelta(days=DAYS - 1))
        before = await _views(account, [old, recent])
        assert (before[0][old][1]["clicks"], before[0][old][1]["uniqueClicks"]) == (8, 2)
        assert (before[1]["clicks"], before[1]["uniqueClicks"]) == (9, 3)
        assert await _link_rows(db, old) == (6, 12, 8)

        done = await retention.purge_expired(db, DAYS, batch=4, now=now, pause=0)

        assert done.campaigns == [old]
        assert done.rows == {"click": 8, "link": 12, "message": 6}
        # never more than 4 clicks, nor 4 messages with their links, per transaction
        assert done.batches >= 3
        assert await _link_rows(db, old) == (0, 0, 0)
        assert await _link_rows(db, recent) == (2, 4, 1)
        assert await _views(account, [old, recent]) == before
        for code in [c for pair in codes.values() for c in pair]:
            r = await api.client.get(f"/l/{code}")
            assert r.status_code == 404, code  # as for any unknown code
            assert r.headers["content-type"].startswith("application/problem+json")
        # the per-URL breakdown was the links' own detail: it goes with them
        links = (await account.get(f"/campaigns/{old}/links")).json()
        assert links["total"] == 0
        assert (await account.get(f"/campaigns/{recent}/links")).json()["total"] == 2

    async def test_a_click_on_a_link_purged_after_its_redirect_is_dropped_alone(
        self, db, make_api, settings
    ):
        """The redirect read the link, retention deleted it, then the click's flush came:
        that click is lost like a click on an unknown code; the flush's others are kept."""
        api = await make_api()
        account = await api.new_account("acme", credits=1000)
        await set_rates(db, [("sms", "*", "", 700)])
        provider = FakeProvider("sms")
        old = await _tracked(db, settings, account, provider, 1, "old")
        gone = SHORT.findall(provider.sent[0].text or "")[0]
        live = await _tracked(db, settings, account, provider, 1, "live")
        kept = SHORT.findall(provider.sent[1].text or "")[0]
        now = utcnow()
        await _finished_at(db, old, now - timedelta(days=DAYS + 1))
        assert (await retention.purge_expired(db, DAYS, now=now, pause=0)).campaigns == [old]

        late = [
            clicks.ClickIn(gone, old, now, "ua", None),
            clicks.ClickIn(kept, live, now, "ua", None),
        ]

        async def flush(session: AsyncSession) -> None:
            await clicks.write(session, late)

        await in_transaction(db, flush)
        assert await _link_rows(db, old) == (0, 0, 0)
        assert await _link_rows(db, live) == (1, 2, 1)
        stats = (await account.get(f"/campaigns/{live}")).json()["stats"]
        assert (stats["clicks"], stats["uniqueClicks"]) == (1, 1)


async def _sleep() -> None:
    await asyncio.sleep(0.05)
