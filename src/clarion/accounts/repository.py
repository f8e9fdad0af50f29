from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account, ApiKey, CreditLedger, IdempotencyRecord
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


async def reserved_by_campaigns(
    session: AsyncSession, campaign_ids: Sequence[int]
) -> dict[int, int]:
    """campaign id -> the sum of its reserved deltas, for each of these campaigns (0 for one
    with no ledger row), in one statement."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(CreditLedger.campaign_id, func.sum(CreditLedger.reserved_delta))
        .where(CreditLedger.campaign_id.in_(campaign_ids))
        .group_by(CreditLedger.campaign_id)
    )
    held = {cid: int(total) for cid, total in rows if cid is not None}
    return {cid: held.get(cid, 0) for cid in campaign_ids}


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
    transaction already excludes every other writer)."""
    if account_ids and is_postgres(session):
        await session.execute(
            select(Account.id)
            .where(Account.id.in_(account_ids))
            .order_by(Account.id)
            .with_for_update()
        )
