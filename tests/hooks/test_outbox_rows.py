"""The outbox packs the events one statement writes for a hook into rows of up to 500: a
batch of 1,200 opt-outs is three rows, delivered as three batches with their events in
order and ids that never repeat; an outbox written before the packing keeps its ids."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text

from clarion.accounts.models import Account
from clarion.audience import optouts
from clarion.audience.history import Cause
from clarion.audience.models import Contact
from clarion.db.base import UTCDateTime
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.hooks.deliverer import batch_body
from clarion.hooks.models import Hook, HookEvent
from tests.conftest import AccountClient, Api
from tests.hooks.conftest import Receiver, add_hook, deliver_all, outbox_events
from tests.sending.conftest import phones, seed_contacts

REFUSING = "http://127.0.0.1:1/hook"  # nothing listens: every attempt fails at once


async def _contacts_with_a_hook(
    acme: AccountClient, receiver: Receiver, db: Database, n: int
) -> list[int]:
    """`n` contacts of acme, whose opt-outs a hook wants: their ids in order."""
    await add_hook(acme, receiver, ["contact.opted_out"])
    await seed_contacts(db, acme.id, phones(n))
    async with db.session(write=False) as s:
        return list((await s.execute(select(Contact.id).order_by(Contact.id))).scalars())


async def _opt_out(db: Database, ids: list[int]) -> None:
    """Opt the contacts out in one transaction (one statement of events)."""
    async with db.transaction() as s:
        assert await optouts.opt_out(s, ids, "sms", Cause("api", "key", None, None)) == len(ids)


async def test_one_statements_events_are_rows_of_500_delivered_in_order(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database, make_deliverer: Any
) -> None:
    ids = await _contacts_with_a_hook(acme, receiver, db, 1200)
    # a second hook, whose receiver is not listening: each statement writes a row for each
    r = await acme.post("/hooks", json={"url": REFUSING, "events": ["contact.opted_out"]})
    assert r.status_code == 201, r.text
    await _opt_out(db, ids)
    async with db.session(write=False) as s:
        rows = (
            await s.execute(select(HookEvent.hook_id, HookEvent.event_count).order_by(HookEvent.id))
        ).all()
    hooks = sorted({hook for hook, _ in rows})
    assert len(hooks) == 2
    assert all([n for h, n in rows if h == hook] == [500, 500, 200] for hook in hooks)
    events = await outbox_events(db)
    assert all([e.data["contactId"] for e in events if e.hook_id == hook] == ids for hook in hooks)

    deliverer = await make_deliverer()  # batches of up to 500: one row each
    await deliver_all(deliverer)
    assert [len(body["events"]) for _, body in receiver.batches] == [500, 500, 200]
    events = receiver.events
    assert [e["data"]["contactId"] for e in events] == ids
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})


async def test_a_batch_takes_whole_rows_up_to_its_size(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database, make_deliverer: Any
) -> None:
    ids = await _contacts_with_a_hook(acme, receiver, db, 5)
    for part in (ids[:3], ids[3:4], ids[4:]):  # rows of 3, 1 and 1 events
        await _opt_out(db, part)
    await deliver_all(await make_deliverer(hooks_batch_size=2))
    # the row of 3 goes whole although the batch size is 2; the rows of 1 go together
    assert [len(body["events"]) for _, body in receiver.batches] == [3, 2]
    assert [e["data"]["contactId"] for e in receiver.events] == ids


OLD_EVENTS = {
    7: datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    8: datetime(2026, 12, 1, 9, 30, 0, 250000, tzinfo=UTC),
}


async def test_events_written_before_the_packing_keep_their_ids(empty_database_url: str) -> None:
    await asyncio.to_thread(upgrade, empty_database_url, "reservation_slice")
    db = Database(empty_database_url)
    try:
        async with db.transaction() as s:
            account = Account(name="a")
            s.add(account)
            await s.flush()
            hook = Hook(
                account_id=account.id, url="https://h.example/", event_types=" * ", secret="s"
            )
            s.add(hook)
            await s.flush()
            for event_id, at in OLD_EVENTS.items():
                await s.execute(
                    text(
                        "INSERT INTO hook_event (id, hook_id, account_id, type, data, at) "
                        "VALUES (:id, :hook, :account, 'message.sent', :data, :at)"
                    ).bindparams(bindparam("at", type_=UTCDateTime())),
                    {
                        "id": event_id,
                        "hook": hook.id,
                        "account": account.id,
                        "data": json.dumps({"messageId": event_id}),
                        "at": at,
                    },
                )
    finally:
        await db.dispose()
    await asyncio.to_thread(upgrade, empty_database_url, "head")
    db = Database(empty_database_url)
    try:
        async with db.session(write=False) as s:
            rows = (await s.execute(select(HookEvent).order_by(HookEvent.id))).scalars().all()
            packed = [(r.id, r.event_count, json.loads(r.events)) for r in rows]
    finally:
        await db.dispose()
    # `at` keeps its instant, written with its microseconds
    stored = {
        7: {"id": 7, "type": "message.sent", "at": "2026-12-01T09:30:00.000000Z"},
        8: {"id": 8, "type": "message.sent", "at": "2026-12-01T09:30:00.250000Z"},
    }
    expected = [{**stored[i], "data": {"messageId": i}} for i in OLD_EVENTS]
    assert packed == [(i, 1, [event]) for i, event in zip(OLD_EVENTS, expected, strict=True)]
    # delivered, they keep those ids (a row's stored id wins over the one made from it)
    body = batch_body([(row_id, json.dumps(events)) for row_id, _, events in packed])
    assert json.loads(body)["events"] == expected
