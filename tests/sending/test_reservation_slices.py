"""A worker pays its batches of a campaign from its slice of the campaign's reservation,
without the account's row: the slice is opened (account row locked) for the first batch and
refilled when short, a stopped worker's slice is taken back when the campaign runs short,
and the campaign's settling folds every slice into the account row. The balance the API
shows, the ledger and the reservation are exact all along."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from clarion.accounts import ledger
from clarion.accounts.models import Account, ReservationSlice
from clarion.db.base import utcnow
from clarion.operations.gauges import read as read_gauges
from clarion.sending.dispatcher import Dispatcher
from clarion.sending.scheduler import tick
from tests.conftest import assert_ledger_consistent, statements_sent
from tests.sending.conftest import (
    assert_partition,
    phones,
    seed_campaign,
    seed_contacts,
    set_rates,
)

PRICE = 700  # units (1/10,000 credit) a message


@contextmanager
def account_statements(db: Any) -> Iterator[list[str]]:
    """The statements this process sends that lock or change an account row."""
    seen: list[str] = []

    def record(_conn: Any, statement: str, _parameters: Any) -> None:
        flat = " ".join(statement.split()).upper()
        if flat.startswith("UPDATE ACCOUNT ") or ("FROM ACCOUNT" in flat and "FOR " in flat):
            seen.append(flat)

    with statements_sent(db, record):
        yield seen


async def _slices(db: Any, campaign_id: int) -> dict[str, tuple[int, int]]:
    async with db.session(write=False) as s:
        rows = await s.execute(
            select(ReservationSlice.owner, ReservationSlice.amount, ReservationSlice.spent).where(
                ReservationSlice.campaign_id == campaign_id
            )
        )
        return {o: (int(a), int(sp)) for o, a, sp in rows}


async def _account_row(db: Any, account_id: int) -> tuple[int, int]:
    async with db.session(write=False) as s:
        row = (
            await s.execute(
                select(Account.balance, Account.reserved).where(Account.id == account_id)
            )
        ).one()
        return int(row[0]), int(row[1])


async def _send(d: Dispatcher, n: int) -> None:
    batch = await d.claim(n)
    assert len(batch) == n
    await d.run_batch(batch)


async def _campaign(db: Any, api: Any, n: int, credits: float) -> tuple[Any, int]:
    account = await api.new_account("a", credits=credits)
    await set_rates(db, [("sms", "*", "", PRICE)])
    contacts = await seed_contacts(db, account.id, phones(n))
    campaign_id = await seed_campaign(db, account.id, [contacts], text="Hi", reserve=n * PRICE)
    await tick(db, 50_000)
    return account, campaign_id


async def _balance(api: Any, account: Any) -> dict[str, float]:
    response = await account.get("/account")
    assert response.status_code == 200, response.text
    body: dict[str, float] = response.json()
    return body


async def test_later_batches_are_paid_from_the_slice_without_the_account_row(
    db, api, make_dispatcher, sms
):
    account, campaign_id = await _campaign(db, api, 300, credits=100)
    d = make_dispatcher()

    with account_statements(db) as first:
        await _send(d, 10)
    assert first  # the slice was opened with the account's row locked
    assert await _slices(db, campaign_id) == {"test-worker": (8 * 10 * PRICE, 0)}
    row_after_first = await _account_row(db, account.id)

    with account_statements(db) as second:
        await _send(d, 10)
        await _send(d, 20)

    assert second == []
    assert await _account_row(db, account.id) == row_after_first  # not folded yet
    assert await _slices(db, campaign_id) == {"test-worker": (5 * 10 * PRICE, 30 * PRICE)}
    body = await _balance(api, account)
    assert body["balance"] == pytest.approx(100 - 40 * PRICE / 10_000)
    assert body["reserved"] == pytest.approx(260 * PRICE / 10_000)
    await assert_ledger_consistent(db, account.id)
    assert len(sms.accepted) == 40


async def test_a_short_slice_is_refilled_and_its_spending_folded(db, api, make_dispatcher, sms):
    account, campaign_id = await _campaign(db, api, 300, credits=100)
    d = make_dispatcher()
    await _send(d, 10)  # opens 8 batches' worth
    await _send(d, 80)  # covered exactly: the slice is empty after it
    assert await _slices(db, campaign_id) == {"test-worker": (0, 80 * PRICE)}

    with account_statements(db) as seen:
        await _send(d, 10)

    assert seen  # opened again, under the account's lock
    assert await _slices(db, campaign_id) == {"test-worker": (8 * 10 * PRICE, 0)}
    balance, reserved = await _account_row(db, account.id)
    assert balance == 100 * 10_000 - 100 * PRICE  # everything spent is on the row now
    assert reserved == 200 * PRICE
    await assert_ledger_consistent(db, account.id)


async def test_a_stopped_worker_s_slice_is_taken_back_when_the_campaign_runs_short(
    db, api, make_dispatcher, sms
):
    # The account has exactly the reservation: nothing is available besides it, so a
    # message the reservation did not pay would fail for want of credits.
    account, campaign_id = await _campaign(db, api, 30, credits=30 * PRICE / 10_000)
    stopped = make_dispatcher(owner="stopped-worker")
    await _send(stopped, 10)  # its slice sets aside the other 20 messages' credits
    assert await _slices(db, campaign_id) == {"stopped-worker": (20 * PRICE, 0)}

    other = make_dispatcher(owner="other-worker")
    await _send(other, 10)
    await _send(other, 10)

    await tick(db, 50_000)
    c = await assert_partition(db, campaign_id)
    assert (c.sent, c.failed, c.spent) == (30, 0, 30 * PRICE)
    assert "stopped-worker" not in await _slices(db, campaign_id)
    await assert_ledger_consistent(db, account.id)


async def test_settling_the_campaign_folds_and_dissolves_its_slices(db, api, make_dispatcher, sms):
    account, campaign_id = await _campaign(db, api, 200, credits=100)
    for owner, n in (("w1", 10), ("w2", 20), ("w1", 10), ("w2", 10)):
        await _send(make_dispatcher(owner=owner), n)
    assert set(await _slices(db, campaign_id)) == {"w1", "w2"}

    async with db.transaction() as s:  # as its completion or cancellation does
        await ledger.settle(s, account.id, campaign_id, note="test")

    assert await _slices(db, campaign_id) == {}
    assert await _account_row(db, account.id) == (100 * 10_000 - 50 * PRICE, 0)
    await assert_ledger_consistent(db, account.id)


async def test_a_slice_found_short_when_charged_runs_the_recording_again(
    db, api, make_dispatcher, sms, monkeypatch
):
    account, campaign_id = await _campaign(db, api, 100, credits=100)
    d = make_dispatcher()
    await _send(d, 10)  # its slice: 80 messages' credits
    real = ledger.slice_amounts
    reads = 0

    async def stale_first(session: Any, owner: str, ids: Any) -> dict[int, int]:
        # The read takes no lock, so what it sees may be gone when the charge comes (another
        # worker short of credits took the slice back): here the first read sees more than
        # the slice holds, and the charge from it finds too little.
        nonlocal reads
        reads += 1
        found = await real(session, owner, ids)
        return {cid: 10**12 for cid in found} if reads == 1 else found

    monkeypatch.setattr(ledger, "slice_amounts", stale_first)
    await _send(d, 90)

    assert reads == 2  # run again, and paid the second time with the account locked
    c = await assert_partition(db, campaign_id)
    assert (c.sent, c.failed, c.spent) == (100, 0, 100 * PRICE)
    assert await _slices(db, campaign_id) == {}  # the campaign's whole hold is spent
    await assert_ledger_consistent(db, account.id)


async def test_every_reader_of_the_balance_counts_what_slices_spent(db, api, make_dispatcher, sms):
    account, campaign_id = await _campaign(db, api, 300, credits=100)
    d = make_dispatcher()
    await _send(d, 10)
    await _send(d, 10)  # from the slice: the account row does not show it yet
    assert await _slices(db, campaign_id) == {"test-worker": (7 * 10 * PRICE, 10 * PRICE)}
    balance = 100 - 20 * PRICE / 10_000
    reserved = 280 * PRICE / 10_000

    one = (await api.admin("GET", f"/admin/accounts/{account.id}")).json()
    assert (one["balance"], one["reserved"]) == (pytest.approx(balance), pytest.approx(reserved))
    listed = (await api.admin("GET", "/admin/accounts")).json()["items"]
    assert [a["balance"] for a in listed if a["id"] == account.id] == [pytest.approx(balance)]
    me = (await account.get("/me")).json()["account"]
    assert me["available"] == pytest.approx(balance - reserved)
    topped = await api.admin("POST", f"/admin/accounts/{account.id}/credits", json={"amount": 1})
    assert topped.json()["balance"] == pytest.approx(balance + 1)
    gauges = await read_gauges(db, utcnow(), 1000)
    assert gauges.credits_reserved == pytest.approx(reserved)
    await assert_ledger_consistent(db, account.id)


async def test_a_charge_from_a_slice_does_not_wait_for_the_account_lock(
    db, api, make_dispatcher, sms
):
    """The ledger row a charge from a slice writes refers to the account, and its foreign key
    check locks the account row FOR KEY SHARE: the account lock (`lock_accounts`) must not
    exclude that, or a worker holding the account while it takes back a slice and the
    worker charging from that slice wait for each other."""
    if db.is_sqlite:
        pytest.skip("row locks: PostgreSQL (SQLite runs one writer at a time)")
    account, campaign_id = await _campaign(db, api, 300, credits=100)
    await _send(make_dispatcher(), 10)  # opens the test worker's slice

    async with db.transaction() as holder:
        await ledger.lock_accounts(holder, [account.id])

        async def charge() -> bool:
            async with db.transaction() as s:
                return await ledger.charge_from_slice(
                    s, "test-worker", account.id, campaign_id, PRICE
                )

        assert await asyncio.wait_for(charge(), timeout=5)
    await assert_ledger_consistent(db, account.id)
