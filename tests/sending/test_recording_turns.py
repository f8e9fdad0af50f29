"""A process records one batch at a time: its lanes' recording transactions never overlap.

On PostgreSQL the recordings of one account's batches would otherwise all be open at once,
each holding the message rows it updated while it waits for the account row; on SQLite the
one writer serializes them anyway (BEGIN IMMEDIATE), so there the test shows the same
outcome by another cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

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
    """Counts the ORM transactions open at once in this process ('now', 'most')."""
    seen = {"now": 0, "most": 0}

    def began(_session: Session, _transaction: Any, _connection: Any) -> None:
        seen["now"] += 1
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


async def test_lanes_record_one_batch_at_a_time(db, api, make_dispatcher, sms):
    account = await api.new_account("a", credits=1000)
    await set_rates(db, [("sms", "*", "", 700)])
    contacts = await seed_contacts(db, account.id, phones(300))
    campaign_id = await seed_campaign(db, account.id, [contacts], text="Hi", reserve=300 * 700)
    await tick(db, 50_000)
    d = make_dispatcher()
    pending = []
    for _ in range(3):  # three lanes' batches, claimed and handed over
        batch = await d.claim(100)
        assert len(batch) == 100
        prepared = await d.prepare(batch)
        await d.submit(prepared)
        pending.append(prepared)

    with open_transactions() as seen:
        recorded = await asyncio.gather(*(d.record(p) for p in pending))

    assert seen["most"] == 1
    assert [len(r) for r in recorded] == [100, 100, 100]
    assert len(sms.accepted) == 300
    await tick(db, 50_000)
    c = await assert_partition(db, campaign_id)
    assert c.sent == 300
    assert c.spent == 300 * 700
    await assert_ledger_consistent(db, account.id)
