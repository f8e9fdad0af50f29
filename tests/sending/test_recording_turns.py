"""A process records in one transaction at a time, and that transaction takes every batch
whose lane is waiting: its lanes' recording transactions never overlap, and batches that
waited are recorded together.

On PostgreSQL the recordings of one account's batches would otherwise all be open at once,
each holding the message rows it updated while it waits for the account row; on SQLite the
one writer serializes them anyway (BEGIN IMMEDIATE), so there the overlap check shows the
same outcome by another cause; the grouping is the process's on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from clarion.messages.models import Message
from clarion.sending.dispatcher import Dispatcher, Pending
from clarion.sending.scheduler import tick
from tests.conftest import assert_ledger_consistent
from tests.sending.conftest import (
    assert_partition,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)


@contextmanager
def open_transactions() -> Iterator[dict[str, int]]:
    """Counts the ORM transactions of this process: open at once now, at most, in all."""
    seen = {"now": 0, "most": 0, "all": 0}

    def began(_session: Session, _transaction: Any, _connection: Any) -> None:
        seen["now"] += 1
        seen["all"] += 1
        seen["most"] = max(seen["most"], seen["now"])

    def ended(_session: Session) -> None:
        seen["now"] -= 1

    event.listen(Session, "after_begin", began)
    event.listen(Session, "after_commit", ended)
    event.listen(Session, "after_rollback", ended)
    try:
        yield seen
    finally:
        event.remove(Session, "after_begin", began)
        event.remove(Session, "after_commit", ended)
        event.remove(Session, "after_rollback", ended)


async def _three_lanes_handed_over(
    db: Any, api: Any, make_dispatcher: Any
) -> tuple[Any, int, Dispatcher, list[list[Pending]]]:
    """A campaign of 300 and three lanes' batches of 100, claimed and handed over, not yet
    recorded: (account, campaign id, dispatcher, the batches)."""
    account = await api.new_account("a", credits=1000)
    await set_rates(db, [("sms", "*", "", 700)])
    contacts = await seed_contacts(db, account.id, phones(300))
    campaign_id = await seed_campaign(db, account.id, [contacts], text="Hi", reserve=300 * 700)
    await tick(db, 50_000)
    d = make_dispatcher()
    pending = []
    for _ in range(3):
        batch = await d.claim(100)
        assert len(batch) == 100
        prepared = await d.prepare(batch)
        await d.submit(prepared)
        pending.append(prepared)
    return account, campaign_id, d, pending


async def test_lanes_take_turns_and_waiting_batches_are_recorded_together(
    db, api, make_dispatcher, sms
):
    account, campaign_id, d, pending = await _three_lanes_handed_over(db, api, make_dispatcher)

    with open_transactions() as seen:
        recorded = await asyncio.gather(*(d.record(p) for p in pending))

    assert seen["most"] == 1
    # The first lane's batch went alone; the two that waited for it, in one transaction.
    assert seen["all"] == 2
    assert [len(r) for r in recorded] == [100, 100, 100]
    assert len(sms.accepted) == 300
    await tick(db, 50_000)
    c = await assert_partition(db, campaign_id)
    assert c.sent == 300
    assert c.spent == 300 * 700
    await assert_ledger_consistent(db, account.id)


async def test_batches_recorded_together_fail_together_and_keep_their_leases(
    db, api, make_dispatcher
):
    account, campaign_id, d, pending = await _three_lanes_handed_over(db, api, make_dispatcher)
    # The third batch cannot be written (a value no integer column holds): the second,
    # waiting in the same transaction, fails with it; the first went alone before them.
    broken = pending[2][0].outcome
    assert broken is not None
    broken.units = 2**70

    first, second, third = await asyncio.gather(
        *(d.record(p) for p in pending), return_exceptions=True
    )

    assert isinstance(first, list) and len(first) == 100
    assert isinstance(second, Exception) and isinstance(third, Exception)
    waiting = [p.claimed.id for batch in pending[1:] for p in batch]
    async with db.session(write=False) as s:
        rows = (
            await s.execute(
                select(Message.status, Message.lease_owner).where(Message.id.in_(waiting))
            )
        ).all()
    assert {tuple(r) for r in rows} == {("sending", "test-worker")}  # nothing written
    await tick(db, 50_000)
    c = await assert_partition(db, campaign_id)
    assert (c.sent, c.sending, c.spent) == (100, 200, 100 * 700)
    await assert_ledger_consistent(db, account.id)
