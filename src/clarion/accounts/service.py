from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger, repository
from clarion.accounts.models import Account, ApiKey
from clarion.auth import hash_secret, new_api_key
from clarion.errors import NotFound
from clarion.roles import MANAGER, OWNER


async def create_account(session: AsyncSession, name: str, credits: int = 0) -> tuple[Account, str]:
    """Create an account with its first API key (an owner key); returns the account and the
    key (shown once)."""
    account = Account(name=name, balance=0, reserved=0, approval_required=False, timezone="UTC")
    session.add(account)
    await session.flush()
    _, key = await issue_key(session, account.id, role=OWNER)
    if credits:
        await ledger.topup(session, account.id, credits, note="initial credits")
    await session.refresh(account)
    return account, key


async def issue_key(
    session: AsyncSession, account_id: int, *, name: str = "default", role: str = MANAGER
) -> tuple[ApiKey, str]:
    """A new API key for the account: the stored row and the key itself (shown once)."""
    key = new_api_key()
    row = ApiKey(
        account_id=account_id, name=name, role=role, prefix=key[:12], key_hash=hash_secret(key)
    )
    session.add(row)
    await session.flush()
    return row, key


async def require_account(session: AsyncSession, account_id: int) -> Account:
    account = await repository.get_account(session, account_id)
    if account is None:
        raise NotFound(f"Account {account_id} not found.")
    return account
