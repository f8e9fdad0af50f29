"""Delivery to a real receiver on a socket: signed batches in order, retries with backoff
visible in `nextAttemptAt`, giving up after 24 h, the manual retry, disabling after 3 days of
failures. The clock is injected, so the day-long rules run in milliseconds."""

from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY

from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.hooks import outbox
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


async def test_batches_are_signed_ordered_and_recorded(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database, make_deliverer: Any
) -> None:
    hook = await add_hook(acme, receiver)
    await record_events(db, acme.id, range(7))
    deliverer = await make_deliverer(hooks_batch_size=3)
    await deliver_all(deliverer)
    assert receiver.rejected == 0
    assert [len(body["events"]) for _, body in receiver.batches] == [3, 3, 1]
    assert all(body["type"] == "batch" for _, body in receiver.batches)
    events = receiver.events
    assert [e["data"]["messageId"] for e in events] == list(range(7))
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {e["type"] for e in events} == {"message.clicked"}
    assert all(e["at"].endswith("Z") for e in events)
    log = await deliveries(acme, hook["id"])
    assert [d["status"] for d in log] == ["succeeded"] * 3
    assert [d["events"] for d in log] == [1, 3, 3]  # newest first
    assert log[0]["attempts"] == 1 and log[0]["lastStatusCode"] == 204
    assert log[0]["nextAttemptAt"] is None
    # the webhook-id names the delivery, so a receiver can drop a batch it already has
    assert [w for w, _ in receiver.batches] == [f"msg_{d['id']}" for d in reversed(log)]
    # nothing left: another round sends nothing
    await deliver_all(deliverer)
    assert len(receiver.batches) == 3


async def test_a_wrong_secret_fails_verification(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database, make_deliverer: Any
) -> None:
    """The receiver's verification is real: with another secret every batch is refused."""
    hook = await add_hook(acme, receiver)
    receiver.secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    await record_events(db, acme.id, range(1))
    await deliver_all(await make_deliverer())
    assert receiver.rejected == 1 and receiver.batches == []
    [delivery] = await deliveries(acme, hook["id"])
    assert delivery["status"] == "pending" and delivery["lastStatusCode"] == 401


async def test_a_failing_receiver_is_retried_with_backoff_then_succeeds(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    make_deliverer: Any,
    clock: Clock,
) -> None:
    hook = await add_hook(acme, receiver)
    await record_events(db, acme.id, range(2))
    receiver.fail_next = 4
    deliverer = await make_deliverer()
    counted = {r: _attempts_counted(r) for r in ("succeeded", "failed")}
    waits = []
    for attempt in range(1, 5):
        before = clock.now
        await deliver_all(deliverer)
        [d] = await deliveries(acme, hook["id"])
        assert d["status"] == "pending" and d["attempts"] == attempt
        assert d["lastStatusCode"] == 503 and d["lastError"].startswith("HTTP 503")
        waits.append((at(d["nextAttemptAt"]) - before).total_seconds())
        # not due yet: a round sends nothing
        await deliver_all(deliverer)
        assert (await deliveries(acme, hook["id"]))[0]["attempts"] == attempt
        clock.set(at(d["nextAttemptAt"]))
    assert waits == [10.0, 20.0, 40.0, 80.0]  # exponential (the jitter is fixed at 0 here)
    await deliver_all(deliverer)
    [d] = await deliveries(acme, hook["id"])
    assert d["status"] == "succeeded" and d["attempts"] == 5 and d["lastError"] is None
    assert len(receiver.events) == 2
    assert _attempts_counted("failed") - counted["failed"] == 4  # clarion_hook_deliveries_total
    assert _attempts_counted("succeeded") - counted["succeeded"] == 1


def _attempts_counted(result: str) -> float:
    value = REGISTRY.get_sample_value("clarion_hook_deliveries_total", {"result": result})
    return value or 0.0


async def test_a_later_batch_waits_behind_a_retry(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    make_deliverer: Any,
    clock: Clock,
) -> None:
    """Order per hook: events recorded while a batch waits for its retry go after it."""
    await add_hook(acme, receiver)
    await record_events(db, acme.id, range(1))
    receiver.fail_next = 1
    deliverer = await make_deliverer()
    await deliver_all(deliverer)
    async with db.transaction() as s:
        await outbox.record_event(s, acme.id, "message.clicked", {"messageId": 1}, utcnow())
    await deliver_all(deliverer)
    assert receiver.batches == []
    clock.advance(60)
    await deliver_all(deliverer)
    assert [e["data"]["messageId"] for e in receiver.events] == [0, 1]


async def test_gives_up_after_24_hours_retry_then_disable_after_3_days(
    hook_api: Api,
    acme: AccountClient,
    receiver: Receiver,
    db: Database,
    make_deliverer: Any,
    clock: Clock,
) -> None:
    hook = await add_hook(acme, receiver)
    await record_events(db, acme.id, range(1))
    receiver.always_fail = True
    deliverer = await make_deliverer()
    start = clock.now
    await deliver_all(deliverer)
    [d] = await deliveries(acme, hook["id"])
    r = await acme.post(f"/hooks/{hook['id']}/deliveries/{d['id']}/retry")
    assert r.status_code == 409 and r.json()["currentStatus"] == "pending"
    while d["status"] == "pending":
        clock.set(at(d["nextAttemptAt"]))
        await deliver_all(deliverer)
        [d] = await deliveries(acme, hook["id"])
    assert d["status"] == "failed" and d["nextAttemptAt"] is None
    assert d["attempts"] >= 8
    assert clock.now - start >= timedelta(hours=24)
    assert clock.now - start < timedelta(hours=32)
    first_window = d["attempts"]

    # a manual retry: pending again, due now, with a new window; the receiver is back
    r = await acme.post(f"/hooks/{hook['id']}/deliveries/{d['id']}/retry")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    receiver.always_fail = False
    await deliver_all(deliverer)
    [d] = await deliveries(acme, hook["id"])
    assert d["status"] == "succeeded" and d["attempts"] == first_window + 1
    r = await acme.post(f"/hooks/{hook['id']}/deliveries/{d['id']}/retry")
    assert r.status_code == 409
    assert (await acme.post(f"/hooks/{hook['id']}/deliveries/999999/retry")).status_code == 404

    # fails again: after 3 days with nothing but failures the hook is disabled
    receiver.always_fail = True
    await record_events(db, acme.id, range(1))
    failing_from = clock.now
    await deliver_all(deliverer)
    while (await acme.get(f"/hooks/{hook['id']}")).json()["enabled"]:
        assert clock.now - failing_from < timedelta(days=3, hours=12)
        clock.advance(3600)
        await deliver_all(deliverer)
    assert clock.now - failing_from >= timedelta(days=3)
    # a disabled hook gets no new events; enabled again, its failed batch can be retried
    before = await outbox_count(db)
    await record_events(db, acme.id, range(1))
    assert await outbox_count(db) == before
    r = await acme.put(f"/hooks/{hook['id']}", json={"enabled": True})
    assert r.json()["enabled"] is True
    receiver.always_fail = False
    newest = (await deliveries(acme, hook["id"]))[0]
    assert newest["status"] == "failed"
    r = await acme.post(f"/hooks/{hook['id']}/deliveries/{newest['id']}/retry")
    assert r.status_code == 200
    await deliver_all(deliverer)
    assert (await acme.get(f"/hooks/{hook['id']}")).json()["enabled"] is True
    assert [e["data"]["messageId"] for e in receiver.events] == [0, 0]


async def test_an_unreachable_receiver_is_an_attempt_with_its_error(
    hook_api: Api, acme: AccountClient, receiver: Receiver, db: Database, make_deliverer: Any
) -> None:
    hook = await add_hook(acme, receiver)
    port = receiver.port
    r = await acme.put(f"/hooks/{hook['id']}", json={"url": f"http://127.0.0.1:{port}/nope"})
    assert r.status_code == 200
    await record_events(db, acme.id, range(1))
    await deliver_all(await make_deliverer())
    [d] = await deliveries(acme, hook["id"])
    assert d["status"] == "pending" and d["lastStatusCode"] == 404
    # a URL that is no longer allowed (the setting changed) is refused without a request
    seen = len(receiver.seen_ids)
    await deliver_all(await make_deliverer(owner="w2", hooks_allow_http_hosts=[]))
    assert len(receiver.seen_ids) == seen
