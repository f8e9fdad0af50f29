"""Retention (CLARION_RETENTION_DAYS) of the hooks' delivery log: finished deliveries (and
their events) untouched for longer than that are deleted in bounded batches; a pending
delivery and the events not yet batched stay whatever their age, and are still delivered
afterwards; the delivery log of the API keeps the recent ones."""

from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from clarion.db.session import Database
from clarion.hooks import repository
from clarion.hooks.models import HookDelivery, HookEvent
from clarion.operations import retention
from tests.conftest import AccountClient, Api
from tests.hooks.conftest import (
    Clock,
    Receiver,
    add_hook,
    at,
    deliver_all,
    deliveries,
    outbox_count,
    record_events,
)

DAYS = 30
CLICKED, OPTED_OUT = "message.clicked", "contact.opted_out"
REFUSING = "http://127.0.0.1:1/hook"  # nothing listens: every attempt fails at once


def _deleted(table: str) -> float:
    value = REGISTRY.get_sample_value("clarion_retention_deleted_total", {"table": table})
    return value or 0.0


async def _counts(db: Database) -> tuple[int, int]:
    """(deliveries, outbox rows) in the database."""
    async with db.session(write=False) as s:
        deliveries = (await s.execute(select(func.count()).select_from(HookDelivery))).scalar()
        events = (await s.execute(select(func.count()).select_from(HookEvent))).scalar()
    return int(deliveries or 0), int(events or 0)


async def test_old_finished_deliveries_go_pending_ones_and_the_outbox_stay(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    make_deliverer: Any,
    clock: Clock,
) -> None:
    start = clock.now
    good = await add_hook(acme, receiver, [CLICKED])  # hook A: every batch succeeds
    r = await acme.post("/hooks", json={"url": REFUSING, "events": [OPTED_OUT]})
    assert r.status_code == 201, r.text
    bad = r.json()  # hook B: every attempt fails
    await record_events(db, acme.id, range(6))  # A's events 0..5
    await record_events(db, acme.id, range(4), OPTED_OUT)  # B's events 0..3
    deliverer = await make_deliverer(hooks_batch_size=2)
    await deliver_all(deliverer)
    assert [len(d["events"]) for _, d in receiver.batches] == [2, 2, 2]
    # B's first batch (0, 1) fails for 24 h and is given up; the next one (2, 3), cut while
    # the first was on the wire, then fails and waits for its retry
    b1 = (await deliveries(acme, bad["id"]))[-1]
    while b1["status"] == "pending":
        clock.set(at(b1["nextAttemptAt"]))
        await deliver_all(deliverer)
        b1 = (await deliveries(acme, bad["id"]))[-1]
    assert b1["status"] == "failed"
    assert timedelta(hours=24) <= at(b1["updatedAt"]) - start < timedelta(days=2)
    b2, _ = await deliveries(acme, bad["id"])
    assert (b2["status"], b2["events"], b2["attempts"]) == ("pending", 2, 1)
    # events 4 and 5 come, and B is turned off before they are batched: its pending batch
    # and the rest of its outbox wait for ever
    await record_events(db, acme.id, range(4, 6), OPTED_OUT)
    r = await acme.put(f"/hooks/{bad['id']}", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert await outbox_count(db, hook_id=bad["id"], delivery_id=None) == 2
    # 20 days on, A gets one more batch (100, 101)
    clock.set(start + timedelta(days=20))
    await record_events(db, acme.id, range(100, 102))
    await deliver_all(deliverer)
    a_recent = (await deliveries(acme, good["id"]))[0]
    assert len(await deliveries(acme, good["id"])) == 4
    assert await _counts(db) == (6, 2 * 6 + 2)
    deleted = _deleted("hook_delivery"), _deleted("hook_event")

    # 30.5 days after the first batches: A's three go, two at most per batch of 7 rows
    # (a delivery counts as one row plus its events); B's failed one was last touched
    # later than that, its pending one and its outbox are never due
    done = await retention.purge_expired(
        db, DAYS, batch=7, now=start + timedelta(days=DAYS, hours=12), pause=0
    )
    assert done.rows == {"hook_delivery": 3, "hook_event": 6}
    assert done.hook_batches == 2 and done.campaigns == [] and done.batches == 0
    assert (_deleted("hook_delivery"), _deleted("hook_event")) == (deleted[0] + 3, deleted[1] + 6)
    assert await deliveries(acme, good["id"]) == [a_recent]
    assert [d["id"] for d in await deliveries(acme, bad["id"])] == [b2["id"], b1["id"]]
    assert await _counts(db) == (3, 2 + 2 + 2 + 2)

    # 40 days on: B's failed delivery goes too, whole although it is more than a batch of 2
    # rows; it can no longer be retried. The pending one and the outbox stay.
    now = start + timedelta(days=40)
    done = await retention.purge_expired(db, DAYS, batch=2, now=now, pause=0)
    assert done.rows == {"hook_delivery": 1, "hook_event": 2} and done.hook_batches == 1
    assert await deliveries(acme, good["id"]) == [a_recent]
    [pending] = await deliveries(acme, bad["id"])
    assert pending == b2
    r = await acme.post(f"/hooks/{bad['id']}/deliveries/{b1['id']}/retry")
    assert r.status_code == 404
    assert await outbox_count(db, hook_id=bad["id"], delivery_id=None) == 2
    assert await outbox_count(db, delivery_id=b2["id"]) == 2
    # nothing more is due
    done = await retention.purge_expired(db, DAYS, batch=2, now=now, pause=0)
    assert done.rows == {} and done.hook_batches == 1

    # B back on, at the receiver: its pending batch and its outbox are delivered, in order
    clock.set(now)
    r = await acme.put(f"/hooks/{bad['id']}", json={"enabled": True, "url": receiver.url})
    assert r.status_code == 200, r.text
    receiver.secret = bad["secret"]
    seen = len(receiver.batches)
    await deliver_all(deliverer)
    assert receiver.rejected == 0
    assert [e["data"]["messageId"] for _, b in receiver.batches[seen:] for e in b["events"]] == [
        2,
        3,
        4,
        5,
    ]
    assert receiver.batches[seen][0] == f"msg_{b2['id']}"


async def test_a_batch_is_bounded_and_takes_only_finished_old_deliveries(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    make_deliverer: Any,
    clock: Clock,
) -> None:
    hook = await add_hook(acme, receiver)
    await record_events(db, acme.id, range(9))
    deliverer = await make_deliverer(hooks_batch_size=3)
    await deliver_all(deliverer)
    assert len(await deliveries(acme, hook["id"])) == 3
    cutoff = clock.now + timedelta(seconds=1)
    # a delivery just retried is pending again: never taken, however old
    receiver.always_fail = True
    await record_events(db, acme.id, range(9, 10))
    await deliver_all(deliverer)
    newest = (await deliveries(acme, hook["id"]))[0]
    assert newest["status"] == "pending"
    async with db.transaction() as s:
        await s.execute(
            update(HookDelivery)
            .where(HookDelivery.id == newest["id"])
            .values(created_at=cutoff - timedelta(days=1), updated_at=cutoff - timedelta(days=1))
        )

    async with db.transaction() as s:  # 4 rows each: one batch of 9 rows takes two
        done = await repository.delete_finished_deliveries(s, cutoff, 9)
    assert (done.deliveries, done.events, done.more) == (2, 6, True)
    async with db.transaction() as s:
        done = await repository.delete_finished_deliveries(s, cutoff, 9)
    assert (done.deliveries, done.events, done.more) == (1, 3, False)
    async with db.transaction() as s:
        done = await repository.delete_finished_deliveries(s, cutoff, 9)
    assert (done.deliveries, done.events, done.more) == (0, 0, False)
    assert [d["id"] for d in await deliveries(acme, hook["id"])] == [newest["id"]]
    assert await outbox_count(db, delivery_id=newest["id"]) == 1
