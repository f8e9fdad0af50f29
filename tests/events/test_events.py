"""Live events over real sockets, across two app instances on one database."""

import asyncio
import time
from datetime import timedelta

from sqlalchemy import update

from clarion.audience.models import ContactImport
from clarion.campaigns import counters
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages import tally
from tests.campaigns.conftest import World, create, sms_body
from tests.conftest import AccountClient, Api
from tests.events.conftest import Instance


class TestCampaignStream:
    async def test_starts_with_the_current_state_then_follows_changes_made_elsewhere(
        self, api: Api, account: AccountClient, world: World, instances: list[Instance]
    ) -> None:
        a, b = instances
        lst = await world.new_list(account)
        campaign = await create(account, sms_body([lst]))
        cid = campaign["id"]
        async with b.stream(f"/campaigns/{cid}/events", account.key) as sse:
            first = await sse.next()
            assert first["event"] == "campaign.updated"
            assert first["id"].isdigit()
            current = (await b.client.get(f"/campaigns/{cid}", headers=_auth(account))).json()
            assert first["data"] == current
            started = time.monotonic()
            r = await a.client.put(
                f"/campaigns/{cid}", json={"name": "renamed on A"}, headers=_auth(account)
            )
            assert r.status_code == 200
            event = await sse.next(timeout=2)
            assert time.monotonic() - started < 2.0  # bench/events.py measures the delay
            assert event["data"]["name"] == "renamed on A"
            assert int(event["id"]) > int(first["id"])
            assert event["data"] == r.json()

    async def test_engine_counter_moves_are_events(
        self,
        api: Api,
        account: AccountClient,
        world: World,
        instances: list[Instance],
        db: Database,
    ) -> None:
        lst = await world.new_list(account)
        cid = (await create(account, sms_body([lst])))["id"]
        async with instances[0].stream(f"/campaigns/{cid}/events", account.key) as sse:
            await sse.next()
            # As the engine does it: counter changes appended, folded later.
            async with db.transaction() as s:
                await tally.move(s, cid, {"queued": 5}, recipients=5)
            event = await sse.next(timeout=2)
            assert event["data"]["stats"]["queued"] == 5
            assert event["data"]["stats"]["recipients"] == 5
            async with db.transaction() as s:
                await tally.move(s, cid, {"queued": -2, "sending": 2})
            event = await sse.next(timeout=2)
            assert event["data"]["stats"]["queued"] == 3
            stamped = event["data"]["updatedAt"]
            async with db.transaction() as s:  # the scheduler folds: counters stay, stamp moves
                assert await counters.fold(s, cid)
            event = await sse.next(timeout=2)
            assert event["data"]["stats"]["queued"] == 3 and event["data"]["stats"]["sending"] == 2
            assert event["data"]["updatedAt"] > stamped

    async def test_changes_are_coalesced_to_two_a_second(
        self, api: Api, account: AccountClient, world: World, instances: list[Instance]
    ) -> None:
        lst = await world.new_list(account)
        cid = (await create(account, sms_body([lst])))["id"]
        async with instances[1].stream(f"/campaigns/{cid}/events", account.key) as sse:
            await sse.next()
            for i in range(20):
                await world.campaign_row(cid, name=f"n{i}", updated_at=utcnow())
                await asyncio.sleep(0.05)
            events = await sse.events_for(2.0)
            assert 1 <= len(events) <= 5  # about 1.5 s of changes at <= 2 a second
            assert events[-1]["data"]["name"] == "n19"  # the latest state wins
            await asyncio.sleep(0.6)
            comments_before = len(sse.comments)
            assert await sse.events_for(1.2) == []  # nothing changed: nothing sent...
            assert len(sse.comments) > comments_before  # ...but the keep-alive comment

    async def test_another_accounts_campaign_is_404(
        self, api: Api, account: AccountClient, world: World, instances: list[Instance]
    ) -> None:
        other = await api.new_account("other")
        lst = await world.new_list(other)
        cid = (await create(other, sms_body([lst])))["id"]
        for path in (f"/campaigns/{cid}/events", "/campaigns/999999/events"):
            r = await instances[0].client.get(path, headers=_auth(account))
            assert r.status_code == 404
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await instances[0].client.get("/events")
        assert r.status_code == 401


class TestAccountStream:
    async def test_campaigns_and_imports_of_the_account_only(
        self,
        api: Api,
        account: AccountClient,
        world: World,
        instances: list[Instance],
        db: Database,
    ) -> None:
        a, b = instances
        other = await api.new_account("other")
        lst = await world.new_list(account)
        mine = (await create(account, sms_body([lst])))["id"]
        theirs = (await create(other, sms_body([await world.new_list(other)])))["id"]
        async with b.stream("/events", account.key) as sse:
            await asyncio.sleep(0.3)  # the feed is running
            r = await a.client.put(f"/campaigns/{theirs}", json={"name": "x"}, headers=_auth(other))
            assert r.status_code == 200
            r = await a.client.put(f"/campaigns/{mine}", json={"name": "y"}, headers=_auth(account))
            assert r.status_code == 200
            event = await sse.next(timeout=2)
            assert event["event"] == "campaign.updated" and event["data"]["id"] == mine
            async with db.transaction() as s:
                row = ContactImport(account_id=account.id, list_id=lst, status="running")
                s.add(row)
                await s.flush()
                import_id = row.id
            event = await sse.next(timeout=2)
            assert event["event"] == "import.updated"
            assert event["data"]["id"] == import_id and event["data"]["status"] == "running"
            async with db.transaction() as s:
                await s.execute(
                    update(ContactImport)
                    .where(ContactImport.id == import_id)
                    .values(status="done", rows=3, imported=3, finished_at=utcnow())
                )
            event = await sse.next(timeout=2)
            assert event["data"]["status"] == "done" and event["data"]["imported"] == 3
            got = (await a.client.get(f"/imports/{import_id}", headers=_auth(account))).json()
            assert event["data"] == got
            assert all(e["data"]["id"] != theirs for e in await sse.events_for(0.6))

    async def test_last_event_id_resends_what_changed_since(
        self, api: Api, account: AccountClient, world: World, instances: list[Instance]
    ) -> None:
        a, b = instances
        lst = await world.new_list(account)
        one = (await create(account, sms_body([lst])))["id"]
        two = (await create(account, sms_body([lst])))["id"]
        old = (await create(account, sms_body([lst])))["id"]
        await world.campaign_row(old, updated_at=utcnow() - timedelta(hours=1))
        async with a.stream("/events", account.key) as sse:
            await asyncio.sleep(0.3)
            await account.put(f"/campaigns/{one}", json={"name": "first"})
            last = await sse.next(timeout=2)
        await asyncio.sleep(6)  # past the feed's look-back, so only the resume can send them
        await account.put(f"/campaigns/{one}", json={"name": "while away"})
        await account.put(f"/campaigns/{two}", json={"name": "also away"})
        async with b.stream("/events", account.key, **{"Last-Event-ID": last["id"]}) as sse:
            events = [await sse.next(timeout=2), await sse.next(timeout=2)]
            names = {e["data"]["id"]: e["data"]["name"] for e in events}
            assert names == {one: "while away", two: "also away"}
            assert all(e["data"]["id"] != old for e in await sse.events_for(0.5))


def _auth(account: AccountClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.key}"}
