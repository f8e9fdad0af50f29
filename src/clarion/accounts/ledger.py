"""Credit movements. Each is one guarded UPDATE of the account plus one ledger row, in the
caller's transaction: the balance can never go below zero, nor `reserved` above the balance,
whatever runs at the same time (the WHERE clause is re-checked on the locked row).

Amounts are integers of 1/10,000 credit (see clarion.money).
"""

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account, CreditLedger
from clarion.db.dialect import is_postgres
from clarion.errors import Conflict, InsufficientCredits, NotFound
from clarion.money import from_units


async def _available(session: AsyncSession, account_id: int) -> int:
    row = await session.execute(
        select(Account.balance - Account.reserved).where(Account.id == account_id)
    )
    value = row.scalar_one_or_none()
    if value is None:
        raise NotFound("Account not found.")
    return int(value)


async def topup(
    session: AsyncSession, account_id: int, amount: int, note: str | None = None
) -> int:
    """Add (or, when negative, remove) credits. A debit may not take the balance below zero
    nor below what is reserved for confirmed campaigns (409). Returns the new balance."""
    if amount >= 0:
        stmt = (
            update(Account)
            .where(Account.id == account_id)
            .values(balance=Account.balance + amount)
            .returning(Account.balance)
        )
    else:
        stmt = (
            update(Account)
            .where(Account.id == account_id, Account.balance - Account.reserved >= -amount)
            .values(balance=Account.balance + amount)
            .returning(Account.balance)
        )
    balance = (await session.execute(stmt)).scalar_one_or_none()
    if balance is None:
        available = await _available(session, account_id)
        raise Conflict(
            "The debit would take the balance below zero or below the credits reserved for "
            "confirmed campaigns.",
            available=float(from_units(available)),
        )
    session.add(
        CreditLedger(
            account_id=account_id,
            kind="topup" if amount >= 0 else "debit",
            balance_delta=amount,
            reserved_delta=0,
            note=note,
        )
    )
    return int(balance)


async def reserve(
    session: AsyncSession, account_id: int, campaign_id: int, amount: int, note: str | None = None
) -> None:
    """Hold `amount` of the available credits for a campaign, or raise 402 changing nothing."""
    if amount < 0:
        raise ValueError("reserve amount must be >= 0")
    if amount == 0:
        return
    result = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance - Account.reserved >= amount)
        .values(reserved=Account.reserved + amount)
        .returning(Account.id)
    )
    if result.scalar_one_or_none() is None:
        available = await _available(session, account_id)
        raise InsufficientCredits(
            "Not enough available credits to confirm this campaign.",
            required=float(from_units(amount)),
            available=float(from_units(available)),
        )
    session.add(
        CreditLedger(
            account_id=account_id,
            kind="reserve",
            balance_delta=0,
            reserved_delta=amount,
            campaign_id=campaign_id,
            note=note,
        )
    )


async def release(
    session: AsyncSession, account_id: int, campaign_id: int, amount: int, note: str | None = None
) -> None:
    """Give back part of a campaign's reservation."""
    if amount < 0:
        raise ValueError("release amount must be >= 0")
    if amount == 0:
        return
    result = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.reserved >= amount)
        .values(reserved=Account.reserved - amount)
        .returning(Account.id)
    )
    if result.scalar_one_or_none() is None:
        raise RuntimeError(f"release of {amount} exceeds the reservation of account {account_id}")
    session.add(
        CreditLedger(
            account_id=account_id,
            kind="release",
            balance_delta=0,
            reserved_delta=-amount,
            campaign_id=campaign_id,
            note=note,
        )
    )


async def charge(
    session: AsyncSession,
    account_id: int,
    campaign_id: int | None,
    amount: int,
    *,
    from_reserved: int,
    note: str | None = None,
) -> bool:
    """Spend `amount` credits, of which `from_reserved` come out of the campaign's reservation
    (0 <= from_reserved <= amount); the rest must be available. Returns False, changing
    nothing, when the credits are not there (the caller then fails the message)."""
    if amount < 0 or not 0 <= from_reserved <= amount:
        raise ValueError("charge needs 0 <= from_reserved <= amount")
    if amount == 0:
        return True
    extra = amount - from_reserved
    result = await session.execute(
        update(Account)
        .where(
            Account.id == account_id,
            Account.reserved >= from_reserved,
            Account.balance - Account.reserved >= extra,
        )
        .values(balance=Account.balance - amount, reserved=Account.reserved - from_reserved)
        .returning(Account.id)
    )
    if result.scalar_one_or_none() is None:
        return False
    session.add(
        CreditLedger(
            account_id=account_id,
            kind="charge",
            balance_delta=-amount,
            reserved_delta=-from_reserved,
            campaign_id=campaign_id,
            note=note,
        )
    )
    return True


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> None:
    """Lock these account rows, in ascending id order (the order every transaction that locks
    several accounts uses, so two of them can never wait on each other in a cycle). A
    charge reads what a campaign still holds after this, so concurrent charges of one
    account's campaigns are serialized on the account row and none can overspend."""
    ids = sorted(set(account_ids))
    if ids and is_postgres(session):  # SQLite: the write transaction already excludes others
        await session.execute(
            select(Account.id).where(Account.id.in_(ids)).order_by(Account.id).with_for_update()
        )


async def campaign_reserved(session: AsyncSession, campaign_id: int) -> int:
    """What the campaign still holds in reserve, from the ledger itself."""
    row = await session.execute(
        select(func.coalesce(func.sum(CreditLedger.reserved_delta), 0)).where(
            CreditLedger.campaign_id == campaign_id
        )
    )
    return int(row.scalar_one())


async def check_invariants(session: AsyncSession, account_id: int) -> list[str]:
    """Compare the account row with its ledger. Returns the broken invariants (empty: all hold).

    - sum(balance_delta) == balance, sum(reserved_delta) == reserved
    - 0 <= reserved <= balance
    - reserved == the sum of open reservations (campaigns scheduled, sending or paused)
    """
    from clarion.campaigns.models import Campaign  # the ledger sits below campaigns

    account = await session.get(Account, account_id, populate_existing=True)
    if account is None:
        return [f"account {account_id} does not exist"]
    sums = (
        await session.execute(
            select(
                func.coalesce(func.sum(CreditLedger.balance_delta), 0),
                func.coalesce(func.sum(CreditLedger.reserved_delta), 0),
            ).where(CreditLedger.account_id == account_id)
        )
    ).one()
    problems = []
    if int(sums[0]) != account.balance:
        problems.append(f"sum(ledger balance) {sums[0]} != balance {account.balance}")
    if int(sums[1]) != account.reserved:
        problems.append(f"sum(ledger reserved) {sums[1]} != reserved {account.reserved}")
    if not 0 <= account.reserved <= account.balance:
        problems.append(f"reserved {account.reserved} outside [0, balance {account.balance}]")
    open_ids = select(Campaign.id).where(
        Campaign.account_id == account_id, Campaign.status.in_(("scheduled", "sending", "paused"))
    )
    open_sum = (
        await session.execute(
            select(func.coalesce(func.sum(CreditLedger.reserved_delta), 0)).where(
                CreditLedger.account_id == account_id, CreditLedger.campaign_id.in_(open_ids)
            )
        )
    ).scalar_one()
    if int(open_sum) != account.reserved:
        problems.append(f"open reservations {open_sum} != reserved {account.reserved}")
    closed_rows = (
        await session.execute(
            select(Campaign.id, func.sum(CreditLedger.reserved_delta))
            .join(CreditLedger, CreditLedger.campaign_id == Campaign.id)
            .where(
                Campaign.account_id == account_id,
                Campaign.status.in_(("draft", "completed", "cancelled")),
            )
            .group_by(Campaign.id)
            .having(func.sum(CreditLedger.reserved_delta) != 0)
        )
    ).all()
    for campaign_id, held in closed_rows:
        problems.append(f"closed campaign {campaign_id} still holds {held} in reserve")
    return problems


async def settle(session: AsyncSession, account_id: int, campaign_id: int, note: str) -> int:
    """Release whatever the campaign still holds in reserve (on completion, cancel, delete).
    Returns the amount released."""
    held = await campaign_reserved(session, campaign_id)
    if held > 0:
        await release(session, account_id, campaign_id, held, note=note)
    return held
