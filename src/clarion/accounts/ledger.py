"""Credit movements. Each is one guarded UPDATE of the account plus one ledger row, in the
caller's transaction: the balance can never go below zero, nor `reserved` above the balance,
whatever runs at the same time (the WHERE clause is re-checked on the locked row). The
statements are in `accounts.repository`; the rules (what may move, what is refused) here.

Amounts are integers of 1/10,000 credit (see clarion.money).
"""

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import repository
from clarion.errors import Conflict, InsufficientCredits, NotFound
from clarion.money import MAX_UNITS, from_units


async def _available(session: AsyncSession, account_id: int) -> int:
    value = await repository.available_credits(session, account_id)
    if value is None:
        raise NotFound("Account not found.")
    return value


async def topup(
    session: AsyncSession, account_id: int, amount: int, note: str | None = None
) -> int:
    """Add (or, when negative, remove) credits. A debit may not take the balance below zero
    nor below what is reserved for confirmed campaigns, a top-up not past MAX_UNITS (409,
    changing nothing). Returns the new balance."""
    if amount >= 0:
        balance = await repository.add_to_balance(session, account_id, amount, up_to=MAX_UNITS)
        if balance is None:
            await _available(session, account_id)  # 404 for an unknown account
            raise Conflict(
                "The top-up would take the balance past the maximum of "
                f"{from_units(MAX_UNITS):,} credits.",
                maximum=float(from_units(MAX_UNITS)),
            )
    else:
        balance = await repository.take_from_available(session, account_id, -amount)
    if balance is None:
        available = await _available(session, account_id)
        raise Conflict(
            "The debit would take the balance below zero or below the credits reserved for "
            "confirmed campaigns.",
            available=float(from_units(available)),
        )
    repository.add_ledger_row(
        session,
        account_id,
        "topup" if amount >= 0 else "debit",
        balance_delta=amount,
        reserved_delta=0,
        note=note,
    )
    return balance


async def reserve(
    session: AsyncSession, account_id: int, campaign_id: int, amount: int, note: str | None = None
) -> None:
    """Hold `amount` of the available credits for a campaign, or raise 402 changing nothing."""
    if amount < 0:
        raise ValueError("reserve amount must be >= 0")
    if amount == 0:
        return
    if not await repository.reserve_available(session, account_id, amount):
        available = await _available(session, account_id)
        raise InsufficientCredits(
            "Not enough available credits to confirm this campaign.",
            required=float(from_units(amount)),
            available=float(from_units(available)),
        )
    repository.add_ledger_row(
        session,
        account_id,
        "reserve",
        balance_delta=0,
        reserved_delta=amount,
        campaign_id=campaign_id,
        note=note,
    )


async def release(
    session: AsyncSession, account_id: int, campaign_id: int, amount: int, note: str | None = None
) -> None:
    """Give back part of a campaign's reservation."""
    if amount < 0:
        raise ValueError("release amount must be >= 0")
    if amount == 0:
        return
    if not await repository.release_reserved(session, account_id, amount):
        raise RuntimeError(f"release of {amount} exceeds the reservation of account {account_id}")
    repository.add_ledger_row(
        session,
        account_id,
        "release",
        balance_delta=0,
        reserved_delta=-amount,
        campaign_id=campaign_id,
        note=note,
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
    if not await repository.spend(session, account_id, amount, from_reserved):
        return False
    repository.add_ledger_row(
        session,
        account_id,
        "charge",
        balance_delta=-amount,
        reserved_delta=-from_reserved,
        campaign_id=campaign_id,
        note=note,
    )
    return True


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> None:
    """Lock these account rows, in ascending id order (the order every transaction that locks
    several accounts uses, so two of them can never wait on each other in a cycle). A
    charge reads what a campaign still holds after this, so concurrent charges of one
    account's campaigns are serialized on the account row and none can overspend."""
    await repository.lock_in_id_order(session, sorted(set(account_ids)))


async def refund(
    session: AsyncSession,
    account_id: int,
    campaign_id: int | None,
    amount: int,
    note: str | None = None,
) -> None:
    """Give back credits charged for messages the provider then did not bill."""
    if amount < 0:
        raise ValueError("refund amount must be >= 0")
    if amount == 0:
        return
    await repository.add_to_balance(session, account_id, amount)
    repository.add_ledger_row(
        session,
        account_id,
        "refund",
        balance_delta=amount,
        reserved_delta=0,
        campaign_id=campaign_id,
        note=note,
    )


async def campaign_reserved(session: AsyncSession, campaign_id: int) -> int:
    """What the campaign still holds in reserve, from the ledger itself."""
    return await repository.reserved_by_campaign(session, campaign_id)


async def campaigns_reserved(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, int]:
    """What each of these campaigns still holds in reserve, from the ledger, in one read."""
    return await repository.reserved_by_campaigns(session, sorted(set(campaign_ids)))


async def check_invariants(session: AsyncSession, account_id: int) -> list[str]:
    """Compare the account row with its ledger. Returns the broken invariants (empty: all hold).

    - sum(balance_delta) == balance, sum(reserved_delta) == reserved
    - 0 <= reserved <= balance

    What campaigns hold is checked one layer up (`campaigns.credits.check_invariants`).
    """
    account = await repository.get_account(session, account_id, refresh=True)
    if account is None:
        return [f"account {account_id} does not exist"]
    balance_sum, reserved_sum = await repository.ledger_sums(session, account_id)
    problems = []
    if balance_sum != account.balance:
        problems.append(f"sum(ledger balance) {balance_sum} != balance {account.balance}")
    if reserved_sum != account.reserved:
        problems.append(f"sum(ledger reserved) {reserved_sum} != reserved {account.reserved}")
    if not 0 <= account.reserved <= account.balance:
        problems.append(f"reserved {account.reserved} outside [0, balance {account.balance}]")
    return problems


async def settle(session: AsyncSession, account_id: int, campaign_id: int, note: str) -> int:
    """Release whatever the campaign still holds in reserve (on completion, cancel, delete).
    Returns the amount released."""
    held = await campaign_reserved(session, campaign_id)
    if held > 0:
        await release(session, account_id, campaign_id, held, note=note)
    return held
