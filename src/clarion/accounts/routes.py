from typing import Annotated

from fastapi import APIRouter, Depends, Request

from clarion.accounts import ledger, repository, service
from clarion.accounts.models import Account, ApiKey
from clarion.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountOut,
    ApiKeyCreated,
    ApiKeyOut,
    BalanceOut,
    CreditsChange,
    LedgerEntryOut,
)
from clarion.auth import AdminDep, CurrentAccountId
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.errors import NotFound
from clarion.money import from_units, to_units
from clarion.schemas import Page, PageParams, PathId, page_params

admin_router = APIRouter(prefix="/admin/accounts", tags=["admin"], dependencies=[AdminDep])
router = APIRouter(tags=["account"])


def _account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        name=account.name,
        balance=from_units(account.balance),
        reserved=from_units(account.reserved),
        available=from_units(account.balance - account.reserved),
    )


@admin_router.post("", status_code=201, response_model=AccountCreated)
async def create_account(body: AccountCreate, session: SessionDep) -> AccountCreated:
    account, key = await service.create_account(session, body.name, to_units(body.credits))
    return AccountCreated(
        id=account.id, name=account.name, api_key=key, balance=from_units(account.balance)
    )


@admin_router.get("", response_model=Page[AccountOut])
async def list_accounts(
    session: ReadSessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[AccountOut]:
    accounts, total = await repository.list_accounts(session, page.limit, page.offset)
    return Page(
        items=[_account_out(a) for a in accounts], total=total, limit=page.limit, offset=page.offset
    )


@admin_router.get("/{account_id}", response_model=AccountOut)
async def get_account(account_id: PathId, session: ReadSessionDep) -> AccountOut:
    return _account_out(await service.require_account(session, account_id))


@admin_router.post("/{account_id}/credits", response_model=BalanceOut)
async def change_credits(
    account_id: PathId, body: CreditsChange, session: SessionDep
) -> BalanceOut:
    """Top up (positive) or debit (negative). A debit may not take the balance below zero or
    below the credits reserved for confirmed campaigns, a top-up not past the maximum
    balance of 999,999,999,999.9999 credits (409; nothing changes)."""
    await service.require_account(session, account_id)
    balance = await ledger.topup(session, account_id, to_units(body.amount), body.note)
    return BalanceOut(balance=from_units(balance))


@admin_router.get("/{account_id}/keys", response_model=list[ApiKeyOut])
async def list_keys(account_id: PathId, session: ReadSessionDep) -> list[ApiKey]:
    await service.require_account(session, account_id)
    return await repository.keys_of(session, account_id)


@admin_router.post("/{account_id}/keys", status_code=201, response_model=ApiKeyCreated)
async def create_key(account_id: PathId, session: SessionDep) -> ApiKeyCreated:
    """Issue another API key (shown once), e.g. to rotate keys without downtime."""
    await service.require_account(session, account_id)
    row, key = await service.issue_key(session, account_id)
    return ApiKeyCreated(id=row.id, api_key=key)


@admin_router.delete("/{account_id}/keys/{key_id}", status_code=204)
async def revoke_key(
    account_id: PathId, key_id: PathId, session: SessionDep, request: Request
) -> None:
    key_hash = await repository.revoke_key(session, account_id, key_id)
    if key_hash is None:
        raise NotFound(f"No live API key {key_id} on account {account_id}.")
    request.app.state.key_cache.pop(key_hash, None)


@router.get("/account", response_model=AccountOut)
async def my_account(account_id: CurrentAccountId, session: ReadSessionDep) -> AccountOut:
    return _account_out(await service.require_account(session, account_id))


@router.get("/account/ledger", response_model=Page[LedgerEntryOut])
async def my_ledger(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[LedgerEntryOut]:
    """Every credit movement of the account, newest first."""
    rows, total = await repository.ledger_page(session, account_id, page.limit, page.offset)
    items = [
        LedgerEntryOut(
            id=r.id,
            kind=r.kind,
            amount=from_units(r.balance_delta),
            reserved=from_units(r.reserved_delta),
            campaign_id=r.campaign_id,
            note=r.note,
            created_at=r.created_at,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
