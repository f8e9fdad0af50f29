"""Credit movements. Each is one guarded UPDATE of the account plus one ledger row, in the
caller's transaction: the balance can never go below zero, nor `reserved` above the balance,
whatever runs at the same time (the WHERE clause is re-checked on the locked row). The
statements are in `accounts.repository`; the rules (what may move, what is refused) here.

Amounts are integers of 1/10,000 credit (see clarion.money).
"""

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import repository
from clarion.accounts.models import Account
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
    return balance - (await repository.unfolded_spent(session, [account_id]))[account_id]


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
    _charge_row(session, account_id, campaign_id, amount, from_reserved, note)
    return True


def _charge_row(
    session: AsyncSession,
    account_id: int,
    campaign_id: int | None,
    amount: int,
    from_reserved: int,
    note: str | None = None,
) -> None:
    repository.add_ledger_row(
        session,
        account_id,
        "charge",
        balance_delta=-amount,
        reserved_delta=-from_reserved,
        campaign_id=campaign_id,
        note=note,
    )


async def lock_accounts(session: AsyncSession, account_ids: Iterable[int]) -> None:
    """Lock these account rows, in ascending id order (the order every transaction that locks
    several accounts uses, so two of them can never wait on each other in a cycle), before
    any reservation slice. Slices are made, taken back and dissolved only under this lock,
    and what a campaign holds is read after it, so none can overspend."""
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


async def credits_of(session: AsyncSession, account_id: int) -> tuple[int, int] | None:
    """(balance, reserved) of the account as of now (`credits_of_accounts`). None: no such
    account."""
    account = await repository.get_account(session, account_id, refresh=True)
    if account is None:
        return None
    return (await credits_of_accounts(session, [account]))[account_id]


async def credits_of_accounts(
    session: AsyncSession, accounts: Sequence[Account]
) -> dict[int, tuple[int, int]]:
    """account id -> (balance, reserved) as of now: the row's less what its reservation
    slices spent and the row does not show yet, read in one statement for all of them."""
    spent = await repository.unfolded_spent(session, sorted({a.id for a in accounts}))
    return {a.id: (a.balance - spent[a.id], a.reserved - spent[a.id]) for a in accounts}


async def check_invariants(session: AsyncSession, account_id: int) -> list[str]:
    """Compare the account with its ledger. Returns the broken invariants (empty: all hold).

    - sum(balance_delta) == balance, sum(reserved_delta) == reserved (as `credits_of` reads
      them: the row less what slices spent and it does not show yet)
    - 0 <= reserved <= balance

    What campaigns hold is checked one layer up (`campaigns.credits.check_invariants`).
    """
    credits = await credits_of(session, account_id)
    if credits is None:
        return [f"account {account_id} does not exist"]
    balance, reserved = credits
    balance_sum, reserved_sum = await repository.ledger_sums(session, account_id)
    problems = []
    if balance_sum != balance:
        problems.append(f"sum(ledger balance) {balance_sum} != balance {balance}")
    if reserved_sum != reserved:
        problems.append(f"sum(ledger reserved) {reserved_sum} != reserved {reserved}")
    if not 0 <= reserved <= balance:
        problems.append(f"reserved {reserved} outside [0, balance {balance}]")
    return problems


async def settle(session: AsyncSession, account_id: int, campaign_id: int, note: str) -> int:
    """Release whatever the campaign still holds in reserve (on completion, cancel, delete),
    its slices dissolved first. Returns the amount released."""
    await dissolve_slices(session, account_id, campaign_id)
    held = await campaign_reserved(session, campaign_id)
    if held > 0:
        await release(session, account_id, campaign_id, held, note=note)
    return held


# -- reservation slices -----------------------------------------------------------------------
#
# Every worker's charges of every campaign of an account would queue on the account's row.
# So a worker pays its batches of a campaign from a slice of the campaign's reservation set
# aside for it (`ReservationSlice`), locking that one row of its own: a charge the
# reservation covers leaves what is available unchanged (balance and reserved fall
# together), so the account row can learn of it later. The slice counts it as `spent` until
# it is folded into the row, when the worker next opens a slice or the campaign settles;
# readers of the balance subtract what is not folded (`credits_of`). Each charge writes its
# ledger row at once, as before. Slices are made, taken back and dissolved only with the
# account's row locked; per campaign they never set aside more than it holds.

SLICE_BATCHES = 8  # a slice holds enough for this many charges like the one that opened it


async def slice_amounts(
    session: AsyncSession, owner: str, campaign_ids: Iterable[int]
) -> dict[int, int]:
    """campaign id -> what the owner's slice of it sets aside (none: absent)."""
    return await repository.own_slice_amounts(session, owner, sorted(set(campaign_ids)))


async def charge_from_slice(
    session: AsyncSession, owner: str, account_id: int, campaign_id: int, amount: int
) -> bool:
    """Pay `amount` from the owner's slice of the campaign, without the account's lock.
    False, changing nothing, when the slice no longer holds it (taken back meanwhile)."""
    if amount < 0:
        raise ValueError("charge amount must be >= 0")
    if amount == 0:
        return True
    if not await repository.spend_from_slice(session, campaign_id, owner, amount):
        return False
    _charge_row(session, account_id, campaign_id, amount, from_reserved=amount)
    return True


async def open_slice(
    session: AsyncSession, owner: str, account_id: int, campaign_id: int, need: int
) -> int:
    """With the account's row locked (`lock_accounts`): what of the campaign's reservation the
    owner may spend now. That is its own slice and what no slice sets aside; when those fall
    short of `need`, the other owners' slices are taken back too (a worker that stopped
    leaves its slice behind), waiting for a charge in flight from one: a transaction that
    charges from a slice has taken every account lock it needs before, so it never waits
    for ours. The slices counted are dissolved, their spent folded into the account row;
    `keep_slice` sets aside what is left."""
    own = await repository.lock_slices(session, campaign_id, owner=owner)
    # One statement, one snapshot; a charge from another slice meanwhile lowers the hold
    # and that slice together, so what no slice sets aside does not move.
    pool = (await repository.unsliced_holds(session, [campaign_id]))[campaign_id]
    taken = own
    if pool + sum(amount for _, amount, _ in own) < need:
        taken = own + await repository.lock_slices(session, campaign_id, other_than=owner)
    pool += sum(amount for _, amount, _ in taken)
    await repository.fold_spent(session, account_id, sum(spent for _, _, spent in taken))
    await repository.drop_slices(session, campaign_id, [o for o, _, _ in taken])
    return max(0, pool)


async def keep_slice(
    session: AsyncSession, owner: str, account_id: int, campaign_id: int, amount: int
) -> None:
    """After `open_slice` and the charge: set `amount` aside for the owner's next charges
    (at most what the campaign still holds outside other slices: the caller's pool less
    what it just spent)."""
    if amount > 0:
        await repository.add_slice(session, campaign_id, owner, account_id, amount)


async def dissolve_slices(session: AsyncSession, account_id: int, campaign_id: int) -> None:
    """Fold the campaign's slices into the account row and delete them (waiting for charges
    in flight from them), before its reservation is released or changed."""
    await lock_accounts(session, [account_id])
    slices = await repository.lock_slices(session, campaign_id)
    await repository.fold_spent(session, account_id, sum(spent for _, _, spent in slices))
    await repository.drop_slices(session, campaign_id)
