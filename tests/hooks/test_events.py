"""What goes into the outbox: each event in the transaction of its change (a rolled-back
change leaves none), only for hooks that want it, and with the contract's `data`."""

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from clarion.audience import optouts
from clarion.audience.history import Cause
from clarion.campaigns import lifecycle
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.delivery.service import DbReceiptSink
from clarion.hooks import outbox
from clarion.messages import transitions
from clarion.messages.models import Message
from clarion.providers.base import Outcome, Receipt, SubmitResult
from clarion.sending.dispatcher import Dispatcher
from tests.audience.conftest import import_csv
from tests.conftest import AccountClient, Api
from tests.hooks.conftest import Receiver, add_hook, outbox_count, outbox_events
from tests.sending.conftest import (
    FakeProvider,
    drain,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

PRICE = 100


async def test_a_rolled_back_change_leaves_no_event(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database
) -> None:
    await add_hook(acme, receiver, ["contact.opted_out"])
    await seed_contacts(db, acme.id, phones(1))
    r = await acme.get("/contacts")
    cid = r.json()["items"][0]["id"]

    class Boom(Exception):
        pass

    try:
        async with db.transaction() as s:
            assert await optouts.opt_out(s, [cid], "sms", Cause("api", "key", None, None)) == 1
            assert await outbox_count(db) == 0  # not visible before the commit
            raise Boom
    except Boom:
        pass
    assert await outbox_count(db) == 0
    async with db.transaction() as s:
        await optouts.opt_out(s, [cid], "sms", Cause("api", "key", None, None))
    assert await outbox_count(db, type="contact.opted_out") == 1


async def test_only_hooks_that_want_the_event_get_it(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database
) -> None:
    other = await hook_api.new_account("other")
    wants_sent = await add_hook(acme, receiver, ["message.sent"])
    wants_all = await add_hook(acme, receiver, ["*"])
    off = await add_hook(acme, receiver, ["campaign.paused"])
    r = await acme.put(f"/hooks/{off['id']}", json={"events": ["*"], "enabled": False})
    assert r.status_code == 200
    await add_hook(other, receiver, ["*"])  # another account's hook never sees acme's events
    now = utcnow()
    async with db.transaction() as s:
        await outbox.record_event(s, acme.id, "message.clicked", {"messageId": 1}, now)
        await outbox.record_event(s, acme.id, "message.sent", {"messageId": 2}, now)
    got = Counter((e.hook_id, e.type) for e in await outbox_events(db))
    assert got == {
        (wants_all["id"], "message.clicked"): 1,
        (wants_all["id"], "message.sent"): 1,
        (wants_sent["id"], "message.sent"): 1,
    }


async def test_no_hook_no_event(hook_api: Api, acme: AccountClient, db: Database) -> None:
    async with db.transaction() as s:
        await outbox.record_event(s, acme.id, "message.clicked", {"messageId": 1}, utcnow())
    assert await outbox_count(db) == 0


async def test_engine_and_request_changes_write_their_events(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    settings: Settings,
) -> None:
    await add_hook(acme, receiver, ["*"])
    await set_rates(db, [("sms", "*", "", PRICE)])
    numbers = phones(5)
    lst = await seed_contacts(db, acme.id, numbers)
    refused = numbers[4]
    sms = FakeProvider(
        "sms",
        script=lambda m, n: (
            SubmitResult(m.id, Outcome.REFUSED, error_code="21610") if m.to == refused else None
        ),
    )
    # scheduled and due: the scheduler starts it (campaign.started)
    cid = await seed_campaign(
        db, acme.id, [lst], reserve=5 * PRICE, status="scheduled", scheduled_at=utcnow()
    )
    async with db.transaction() as s:
        assert await lifecycle.start_due(s, utcnow()) == [cid]
    dispatcher = Dispatcher(
        settings.model_copy(update={"worker_batch_size": 2}), db, {"sms": sms}, "w1"
    )
    await drain(db, dispatcher, [cid])
    async with db.session(write=False) as s:
        sent = list(
            (
                await s.execute(
                    select(Message).where(Message.status == "sent").order_by(Message.id)
                )
            ).scalars()
        )
    assert len(sent) == 4
    sink = DbReceiptSink(db)
    await sink.receipts([Receipt("fake", sent[0].provider_message_id or "", "delivered")])
    await sink.receipts([Receipt("fake", sent[1].provider_message_id or "", "read")])
    async with db.transaction() as s:
        expired = await transitions.expire_overdue(
            s, utcnow() + timedelta(days=4), timedelta(hours=72)
        )
    assert expired == 2

    # request-side changes: pause and cancel another campaign, opt a contact out and in
    other = await seed_campaign(db, acme.id, [lst], status="sending")
    assert (await acme.put(f"/campaigns/{other}/pause")).status_code == 200
    assert (await acme.put(f"/campaigns/{other}/cancel")).status_code == 200
    contact = (await acme.get("/contacts")).json()["items"][0]
    assert (await acme.put(f"/contacts/{contact['id']}", json={"optOuts": ["sms"]})).is_success
    assert (await acme.put(f"/contacts/{contact['id']}", json={"optOuts": []})).is_success
    new_list = (await acme.post("/lists", json={"name": "l2"})).json()["id"]
    done = await import_csv(acme, new_list, b"phone\n+33612345678\nnot a phone\n")
    assert done["status"] == "done"

    events = await outbox_events(db)
    types = Counter(e.type for e in events)
    assert types == {
        "campaign.started": 1,
        "message.sent": 4,
        "message.failed": 1,
        "message.delivered": 1,
        "message.read": 1,
        "message.expired": 2,
        "campaign.completed": 1,
        "campaign.paused": 1,
        "campaign.cancelled": 1,
        "contact.opted_out": 1,
        "contact.opted_in": 1,
        "import.completed": 1,
    }
    failed = next(e for e in events if e.type == "message.failed")
    assert failed.data["phone"] == refused and failed.data["errorCode"] == "21610"
    assert set(failed.data) == {
        "messageId",
        "campaignId",
        "contactId",
        "phone",
        "channel",
        "status",
        "errorCode",
        "at",
    }
    assert failed.data["status"] == "failed" and failed.data["campaignId"] == cid
    assert failed.data["channel"] == "sms" and failed.data["at"].endswith("Z")
    completed = next(e for e in events if e.type == "campaign.completed")
    assert completed.data["id"] == cid and completed.data["status"] == "completed"
    assert completed.data["stats"]["expired"] == 0 and completed.data["stats"]["failed"] == 1
    paused = next(e for e in events if e.type == "campaign.paused")
    assert paused.data["id"] == other and paused.data["status"] == "paused"
    opted = next(e for e in events if e.type == "contact.opted_out")
    assert opted.data == {"contactId": contact["id"], "phone": contact["phone"], "channel": "sms"}
    imported = next(e for e in events if e.type == "import.completed")
    assert imported.data["id"] == done["id"] and imported.data["imported"] == 1
    assert imported.data["invalid"] == 1
