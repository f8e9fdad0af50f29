from collections.abc import Sequence

from sqlalchemy import delete, func, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import (
    Account,
    ApiKey,
    CreditLedger,
    IdempotencyRecord,
    ReservationSlice,
)
from clarion.db.base import utcnow
from clarion.db.dialect import is_postgres


async def get_account(
    session: AsyncSession, account_id: int, *, refresh: bool = False
) -> Account | None:
    """The account; `refresh` reads its row again even when the session already has it."""
    return await session.get(Account, account_id, populate_existing=refresh)


async def list_accounts(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[Account], int]:
    total = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
    rows = await session.execute(select(Account).order_by(Account.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


async def key_of(session: AsyncSession, account_id: int, key_id: int) -> ApiKey | None:
    row = await session.execute(
        select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.id == key_id)
    )
    return row.scalar_one_or_none()


async def keys_of(session: AsyncSession, account_id: int) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id)
    )
    return list(rows.scalars())


async def live_keys_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    where = (ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
    total = (await session.execute(select(func.count()).select_from(ApiKey).where(*where))).scalar()
    rows = await session.execute(
        select(ApiKey).where(*where).order_by(ApiKey.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total or 0)


async def revoke_key(session: AsyncSession, account_id: int, key_id: int) -> str | None:
    """Revoke a key; returns its hash, or None when the account has no such live key."""
    row = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiKey.key_hash)
    )
    return row.scalar_one_or_none()


async def ledger_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[CreditLedger], int]:
    where = CreditLedger.account_id == account_id
    total = (
        await session.execute(select(func.count()).select_from(CreditLedger).where(where))
    ).scalar_one()
    rows = await session.execute(
        select(CreditLedger)
        .where(where)
        .order_by(CreditLedger.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)


# -- credits: the statements behind accounts.ledger -------------------------------------------


async def available_credits(session: AsyncSession, account_id: int) -> int | None:
    """balance - reserved (None: no such account)."""
    row = await session.execute(
        select(Account.balance - Account.reserved).where(Account.id == account_id)
    )
    value = row.scalar_one_or_none()
    return None if value is None else int(value)


async def add_to_balance(
    session: AsyncSession, account_id: int, amount: int, *, up_to: int | None = None
) -> int | None:
    """balance += amount (>= 0), unless that would pass `up_to`; the new balance, None when
    there is no such account or the guard refused it."""
    guard = [Account.id == account_id]
    if up_to is not None:
        guard.append(Account.balance <= up_to - amount)
    row = await session.execute(
        update(Account)
        .where(*guard)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
    )
    value = row.scalar_one_or_none()
    return None if value is None else int(value)


async def take_from_available(session: AsyncSession, account_id: int, amount: int) -> int | None:
    """balance -= amount when at least `amount` is available (not reserved); the new balance,
    None (nothing changed) otherwise."""
    row = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance - Account.reserved >= amount)
        .values(balance=Account.balance - amount)
        .returning(Account.balance)
    )
    value = row.scalar_one_or_none()
    return None if value is None else int(value)


async def reserve_available(session: AsyncSession, account_id: int, amount: int) -> bool:
    """reserved += amount when at least `amount` is available; False (nothing changed)
    otherwise."""
    row = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance - Account.reserved >= amount)
        .values(reserved=Account.reserved + amount)
        .returning(Account.id)
    )
    return row.scalar_one_or_none() is not None


async def release_reserved(session: AsyncSession, account_id: int, amount: int) -> bool:
    """reserved -= amount when that much is reserved; False (nothing changed) otherwise."""
    row = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.reserved >= amount)
        .values(reserved=Account.reserved - amount)
        .returning(Account.id)
    )
    return row.scalar_one_or_none() is not None


async def spend(session: AsyncSession, account_id: int, amount: int, from_reserved: int) -> bool:
    """balance -= amount, reserved -= from_reserved, when `from_reserved` is reserved and the
    rest (amount - from_reserved) available; False (nothing changed) otherwise."""
    row = await session.execute(
        update(Account)
        .where(
            Account.id == account_id,
            Account.reserved >= from_reserved,
            Account.balance - Account.reserved >= amount - from_reserved,
        )
        .values(balance=Account.balance - amount, reserved=Account.reserved - from_reserved)
        .returning(Account.id)
    )
    return row.scalar_one_or_none() is not None


def add_ledger_row(
    session: AsyncSession,
    account_id: int,
    kind: str,
    *,
    balance_delta: int,
    reserved_delta: int,
    campaign_id: int | None = None,
    note: str | None = None,
) -> None:
    """The ledger row of one movement (written with the caller's transaction)."""
    session.add(
        CreditLedger(
            account_id=account_id,
            kind=kind,
            balance_delta=balance_delta,
            reserved_delta=reserved_delta,
            campaign_id=campaign_id,
            note=note,
        )
    )


async def reserved_by_campaign(session: AsyncSession, campaign_id: int) -> int:
    """The sum of the campaign's reserved deltas: what it still holds."""
    row = await session.execute(
        select(func.coalesce(func.sum(CreditLedger.reserved_delta), 0)).where(
            CreditLedger.campaign_id == campaign_id
        )
    )
    return int(row.scalar_one())


async def ledger_sums(session: AsyncSession, account_id: int) -> tuple[int, int]:
    """(sum of balance deltas, sum of reserved deltas) of the account's ledger."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(CreditLedger.balance_delta), 0),
                func.coalesce(func.sum(CreditLedger.reserved_delta), 0),
            ).where(CreditLedger.account_id == account_id)
        )
    ).one()
    return int(row[0]), int(row[1])


async def held_by_campaign(session: AsyncSession, account_id: int) -> dict[int, int]:
    """campaign id -> what its ledger rows still hold in reserve, for every campaign of the
    account that holds something (or gave back more than it held)."""
    rows = await session.execute(
        select(CreditLedger.campaign_id, func.sum(CreditLedger.reserved_delta))
        .where(CreditLedger.account_id == account_id, CreditLedger.campaign_id.is_not(None))
        .group_by(CreditLedger.campaign_id)
        .having(func.sum(CreditLedger.reserved_delta) != 0)
    )
    return {cid: int(held) for cid, held in rows if cid is not None}


# -- Idempotency-Key records ------------------------------------------------------------------


async def idempotency_record(
    session: AsyncSession, account_id: int, scope: str, key: str
) -> IdempotencyRecord | None:
    """The record of this key for this account and scope, read afresh from the database."""
    row = await session.execute(
        select(IdempotencyRecord)
        .where(
            IdempotencyRecord.account_id == account_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
        .execution_options(populate_existing=True)
    )
    return row.scalar_one_or_none()


async def delete_idempotency_record(session: AsyncSession, record_id: int) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def lock_in_id_order(session: AsyncSession, account_ids: Sequence[int]) -> None:
    """Lock these account rows in ascending id order (PostgreSQL; on SQLite the write
    transaction already excludes every other writer). FOR NO KEY UPDATE, as an UPDATE of
    the balance takes: it excludes the other lockers but not a row that refers to the account
    (a ledger row, whose foreign key check takes FOR KEY SHARE), so a charge from a
    reservation slice, which takes no account lock, never waits for one."""
    if account_ids and is_postgres(session):
        await session.execute(
            select(Account.id)
            .where(Account.id.in_(account_ids))
            .order_by(Account.id)
            .with_for_update(key_share=True)
        )


# -- reservation slices: the statements behind ledger's slice rules ---------------------------


async def own_slice_amounts(
    session: AsyncSession, owner: str, campaign_ids: Sequence[int]
) -> dict[int, int]:
    """campaign id -> what this owner's slice of it still sets aside (campaigns without one are
    absent). Read without a lock: only the owner adds to its slice; anyone else can only
    take it away, which the guarded spend then finds."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(ReservationSlice.campaign_id, ReservationSlice.amount).where(
            ReservationSlice.owner == owner, ReservationSlice.campaign_id.in_(campaign_ids)
        )
    )
    return {cid: int(amount) for cid, amount in rows}


async def spend_from_slice(
    session: AsyncSession, campaign_id: int, owner: str, amount: int
) -> bool:
    """amount -= x, spent += x on the owner's slice when it sets aside at least x; False
    (nothing changed) otherwise. Locks that one row, never the account's."""
    row = await session.execute(
        update(ReservationSlice)
        .where(
            ReservationSlice.campaign_id == campaign_id,
            ReservationSlice.owner == owner,
            ReservationSlice.amount >= amount,
        )
        .values(amount=ReservationSlice.amount - amount, spent=ReservationSlice.spent + amount)
        .returning(ReservationSlice.campaign_id)
    )
    return row.scalar_one_or_none() is not None


async def lock_slices(
    session: AsyncSession,
    campaign_id: int,
    *,
    owner: str | None = None,
    other_than: str | None = None,
) -> list[tuple[str, int, int]]:
    """(owner, amount, spent) of the campaign's slices (only `owner`'s, or all but
    `other_than`'s), locked, in owner order."""
    stmt = select(ReservationSlice.owner, ReservationSlice.amount, ReservationSlice.spent).where(
        ReservationSlice.campaign_id == campaign_id
    )
    if owner is not None:
        stmt = stmt.where(ReservationSlice.owner == owner)
    if other_than is not None:
        stmt = stmt.where(ReservationSlice.owner != other_than)
    stmt = stmt.order_by(ReservationSlice.owner).with_for_update()
    return [(o, int(a), int(sp)) for o, a, sp in await session.execute(stmt)]


async def unsliced_holds(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, int]:
    """campaign id -> what it holds in reserve (its ledger) less what its slices set aside,
    in one statement, so one snapshot: a charge from a slice lowers both together."""
    if not campaign_ids:
        return {}
    held = select(
        CreditLedger.campaign_id.label("cid"), CreditLedger.reserved_delta.label("v")
    ).where(CreditLedger.campaign_id.in_(campaign_ids))
    sliced = select(ReservationSlice.campaign_id, -ReservationSlice.amount).where(
        ReservationSlice.campaign_id.in_(campaign_ids)
    )
    both = union_all(held, sliced).subquery()
    rows = await session.execute(
        select(both.c.cid, func.coalesce(func.sum(both.c.v), literal(0))).group_by(both.c.cid)
    )
    total = {int(cid): int(v) for cid, v in rows if cid is not None}
    return {cid: total.get(cid, 0) for cid in campaign_ids}


async def add_slice(
    session: AsyncSession, campaign_id: int, owner: str, account_id: int, amount: int
) -> None:
    """Set `amount` aside for the owner (who has none now: `drop_slices` ran first)."""
    await session.execute(
        insert(ReservationSlice).values(
            campaign_id=campaign_id, owner=owner, account_id=account_id, amount=amount, spent=0
        )
    )


async def drop_slices(
    session: AsyncSession, campaign_id: int, owners: Sequence[str] | None = None
) -> None:
    """Delete the campaign's slices (all, or these owners'): what they set aside is the
    campaign's unsliced hold again. The caller has locked them and folded their spent."""
    stmt = delete(ReservationSlice).where(ReservationSlice.campaign_id == campaign_id)
    if owners is not None:
        if not owners:
            return
        stmt = stmt.where(ReservationSlice.owner.in_(owners))
    await session.execute(stmt)


async def fold_spent(session: AsyncSession, account_id: int, spent: int) -> None:
    """Move what slices spent into the account row: balance and reserved fall together."""
    if spent:
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance=Account.balance - spent, reserved=Account.reserved - spent)
        )


async def sliced_campaigns(session: AsyncSession, account_id: int) -> list[int]:
    """The account's campaigns that have reservation slices."""
    rows = await session.execute(
        select(ReservationSlice.campaign_id)
        .where(ReservationSlice.account_id == account_id)
        .distinct()
    )
    return sorted(int(cid) for cid in rows.scalars())


async def unfolded_spent(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, int]:
    """account id -> what its slices spent and its row does not show yet (0: nothing)."""
    if not account_ids:
        return {}
    rows = await session.execute(
        select(ReservationSlice.account_id, func.sum(ReservationSlice.spent))
        .where(ReservationSlice.account_id.in_(account_ids))
        .group_by(ReservationSlice.account_id)
    )
    found = {int(aid): int(spent) for aid, spent in rows}
    return {aid: found.get(aid, 0) for aid in account_ids}
