"""Event hook endpoints (HTTP only; the rules are in service.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from clarion.auth import CurrentAccountId, request_now
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.hooks import outbox, repository, service
from clarion.hooks.models import Hook, HookDelivery
from clarion.hooks.schemas import DeliveryOut, HookCreate, HookCreated, HookOut, HookUpdate
from clarion.roles import MANAGER, requires
from clarion.schemas import Page, PageParams, PathId, page_params

router = APIRouter(prefix="/hooks", tags=["hooks"])


def _fields(hook: Hook) -> dict[str, object]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": outbox.unpack(hook.event_types),
        "description": hook.description,
        "enabled": hook.enabled,
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


def hook_out(hook: Hook) -> HookOut:
    return HookOut.model_validate(_fields(hook))


def delivery_out(d: HookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        status=d.status,  # type: ignore[arg-type]
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        next_attempt_at=d.next_attempt_at if d.status == repository.PENDING else None,
        events=d.events,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


@router.post("", status_code=201, response_model=HookCreated, openapi_extra=requires(MANAGER))
async def create_hook(
    body: HookCreate, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> HookCreated:
    """Register an endpoint for the account's events. The answer carries the signing
    `secret` (shown only here): deliveries follow Standard Webhooks (`webhook-id`,
    `webhook-timestamp`, `webhook-signature`), body `{"type": "batch", "events": [...]}`.
    A URL that is not https://, or points at this server, a loopback, link-local, private or
    unspecified address (also through its DNS name), is 422 unless its host is in
    CLARION_HOOKS_ALLOW_HTTP_HOSTS."""
    hook = await service.create(
        session, account_id, body, request.app.state.settings, request_now(request)
    )
    return HookCreated.model_validate({**_fields(hook), "secret": hook.secret})


@router.get("", response_model=Page[HookOut])
async def list_hooks(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[HookOut]:
    """The account's hooks, oldest first (without their secrets)."""
    rows, total = await repository.hooks_page(session, account_id, page.limit, page.offset)
    return Page(
        items=[hook_out(h) for h in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{hook_id}", response_model=HookOut)
async def get_hook(
    hook_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> HookOut:
    return hook_out(await service.require_hook(session, account_id, hook_id))


@router.put("/{hook_id}", response_model=HookOut, openapi_extra=requires(MANAGER))
async def update_hook(
    hook_id: PathId,
    body: HookUpdate,
    request: Request,
    account_id: CurrentAccountId,
    session: SessionDep,
) -> HookOut:
    """Change the fields given (url, events, description, enabled); the secret stays."""
    hook = await service.update(
        session, account_id, hook_id, body, request.app.state.settings, request_now(request)
    )
    return hook_out(hook)


@router.delete("/{hook_id}", status_code=204, openapi_extra=requires(MANAGER))
async def delete_hook(hook_id: PathId, account_id: CurrentAccountId, session: SessionDep) -> None:
    """Delete the hook with its deliveries and the events not delivered yet."""
    await service.delete(session, account_id, hook_id)


@router.get("/{hook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    hook_id: PathId,
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[str | None, Query(pattern="^(|pending|succeeded|failed)$")] = None,
) -> Page[DeliveryOut]:
    """The hook's deliveries (batches of up to 500 events), newest first. A pending one is
    retried at `nextAttemptAt` with exponential backoff for 24 h (at least 8 attempts), then
    `failed`; `events` is how many events it carries."""
    await service.require_hook(session, account_id, hook_id)
    rows, total = await repository.deliveries_page(
        session, hook_id, status or None, page.limit, page.offset
    )
    return Page(
        items=[delivery_out(d) for d in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/{hook_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    openapi_extra=requires(MANAGER),
)
async def retry_delivery(
    hook_id: PathId,
    delivery_id: PathId,
    request: Request,
    account_id: CurrentAccountId,
    session: SessionDep,
) -> DeliveryOut:
    """Send a failed delivery again (now, then with the usual backoff); 409 unless it is
    `failed`."""
    delivery = await service.retry(session, account_id, hook_id, delivery_id, request_now(request))
    return delivery_out(delivery)
