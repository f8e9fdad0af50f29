from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account, ApiKey, CreditLedger
from clarion.db.base import utcnow


async def get_account(session: AsyncSession, account_id: int) -> Account | None:
    return await session.get(Account, account_id)


async def list_accounts(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[Account], int]:
    total = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
    rows = await session.execute(select(Account).order_by(Account.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


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
