from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger, repository, service
from clarion.accounts.models import Account, ApiKey
from clarion.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountKeyOut,
    AccountOut,
    ApiKeyCreated,
    ApiKeyOut,
    BalanceOut,
    CreditsChange,
    KeyCreate,
    KeyCreated,
    LedgerEntryOut,
    SettingsIn,
    SettingsOut,
)
from clarion.audit import service as audit
from clarion.auth import KEY_REVOKED_CHANNEL, AdminDep, CurrentAccountId, forget_key
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.db.notify import notify
from clarion.errors import NotFound
from clarion.money import from_units, to_units
from clarion.roles import OWNER, requires
from clarion.schemas import Page, PageParams, PathId, page_params

admin_router = APIRouter(prefix="/admin/accounts", tags=["admin"], dependencies=[AdminDep])
router = APIRouter(tags=["account"])


async def accounts_out(session: AsyncSession, accounts: Sequence[Account]) -> list[AccountOut]:
    """The accounts as the API shows them, balance and reserved as of now
    (`ledger.credits_of_accounts`)."""
    credits = await ledger.credits_of_accounts(session, accounts)
    return [
        AccountOut(
            id=a.id,
            name=a.name,
            balance=from_units(credits[a.id][0]),
            reserved=from_units(credits[a.id][1]),
            available=from_units(credits[a.id][0] - credits[a.id][1]),
        )
        for a in accounts
    ]


async def account_out(session: AsyncSession, account: Account) -> AccountOut:
    return (await accounts_out(session, [account]))[0]


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
        items=await accounts_out(session, accounts),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@admin_router.get("/{account_id}", response_model=AccountOut)
async def get_account(account_id: PathId, session: ReadSessionDep) -> AccountOut:
    return await account_out(session, await service.require_account(session, account_id))


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
    """Issue another owner API key (shown once), e.g. to rotate keys without downtime."""
    await service.require_account(session, account_id)
    row, key = await service.issue_key(session, account_id, role=OWNER)
    return ApiKeyCreated(id=row.id, api_key=key)


@admin_router.delete("/{account_id}/keys/{key_id}", status_code=204)
async def revoke_key(
    account_id: PathId, key_id: PathId, session: SessionDep, request: Request
) -> None:
    await _revoke(session, request, account_id, key_id)


async def _revoke(session: SessionDep, request: Request, account_id: int, key_id: int) -> None:
    """Revoke now: this process forgets the key at once, the others when the notification
    sent with this transaction reaches them (well within a second)."""
    key_hash = await repository.revoke_key(session, account_id, key_id)
    if key_hash is None:
        raise NotFound(f"No live API key {key_id} on account {account_id}.")
    await notify(session, KEY_REVOKED_CHANNEL, key_hash)
    forget_key(request.app.state.key_cache, key_hash)


@router.get("/account", response_model=AccountOut)
async def my_account(account_id: CurrentAccountId, session: ReadSessionDep) -> AccountOut:
    return await account_out(session, await service.require_account(session, account_id))


@router.get("/account/keys", response_model=Page[AccountKeyOut], openapi_extra=requires(OWNER))
async def account_keys(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[AccountKeyOut]:
    """The account's live API keys (revoked ones are not listed)."""
    rows, total = await repository.live_keys_page(session, account_id, page.limit, page.offset)
    return Page(
        items=[AccountKeyOut.model_validate(k) for k in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/account/keys", status_code=201, response_model=KeyCreated, openapi_extra=requires(OWNER)
)
async def new_account_key(
    body: KeyCreate, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> KeyCreated:
    """Issue an API key with a role (default manager). `key` is shown this once; only its
    hash is kept."""
    row, key = await service.issue_key(session, account_id, name=body.name, role=body.role)
    audit.describe(request, target=("key", row.id), detail={"name": row.name, "role": row.role})
    return KeyCreated(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        key=key,
        created_at=row.created_at,
    )


@router.delete("/account/keys/{key_id}", status_code=204, openapi_extra=requires(OWNER))
async def revoke_account_key(
    key_id: PathId, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> Response:
    """Revoke the key: every process of the installation refuses it within a second."""
    await _revoke(session, request, account_id, key_id)
    return Response(status_code=204)


@router.get("/account/settings", response_model=SettingsOut)
async def account_settings(account_id: CurrentAccountId, session: ReadSessionDep) -> SettingsOut:
    account = await service.require_account(session, account_id)
    return SettingsOut(approval_required=account.approval_required, timezone=account.timezone)


@router.put("/account/settings", response_model=SettingsOut, openapi_extra=requires(OWNER))
async def change_settings(
    body: SettingsIn, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> SettingsOut:
    """`approvalRequired`: confirm answers 409 (`approval-required`) and campaigns go through
    submit and approve. `timezone`: an IANA name. Fields left out keep their value."""
    account = await service.require_account(session, account_id)
    if body.approval_required is not None:
        account.approval_required = body.approval_required
    if body.timezone is not None:
        account.timezone = body.timezone
    await session.flush()
    audit.describe(
        request,
        action="account.settings.update",
        target=("account", account_id),
        detail=body.model_dump(mode="json", by_alias=True, exclude_unset=True),
    )
    return SettingsOut(approval_required=account.approval_required, timezone=account.timezone)


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
