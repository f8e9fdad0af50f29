"""Hook rules: URL checks, subscriptions, the signing secret, manual retries. Runs in the
request's transaction and only flushes."""

import base64
import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.config import Settings
from clarion.errors import Conflict, NotFound, Unprocessable
from clarion.hooks import addresses, outbox, repository
from clarion.hooks.models import Hook, HookDelivery
from clarion.hooks.schemas import HookCreate, HookUpdate

SECRET_BYTES = 24


class DeliveryNotFailed(Conflict):
    title = "Delivery not failed"


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def _checked_url(url: str, settings: Settings) -> str:
    try:
        host = addresses.check_url(url, settings)
        await addresses.check_resolved(host, settings)
    except addresses.AddressRefused as exc:
        raise Unprocessable(f"url {exc}.", field="url") from None
    return url


async def require_hook(
    session: AsyncSession, account_id: int, hook_id: int, *, for_update: bool = False
) -> Hook:
    hook = await repository.hook_of_account(session, account_id, hook_id, for_update=for_update)
    if hook is None:
        raise NotFound(f"No hook {hook_id}.")
    return hook


async def create(
    session: AsyncSession, account_id: int, body: HookCreate, settings: Settings, now: datetime
) -> Hook:
    hook = Hook(
        account_id=account_id,
        url=await _checked_url(body.url, settings),
        description=body.description,
        event_types=outbox.pack(body.events),
        secret=new_secret(),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(hook)
    await session.flush()
    return hook


async def update(
    session: AsyncSession,
    account_id: int,
    hook_id: int,
    body: HookUpdate,
    settings: Settings,
    now: datetime,
) -> Hook:
    hook = await require_hook(session, account_id, hook_id, for_update=True)
    given = body.model_fields_set
    if "url" in given and body.url is not None:
        hook.url = await _checked_url(body.url, settings)
    if "events" in given and body.events is not None:
        hook.event_types = outbox.pack(body.events)
    if "description" in given:
        hook.description = body.description
    if "enabled" in given and body.enabled is not None:
        if body.enabled and not hook.enabled:
            hook.failing_since = None  # a fresh start: three more days before disabling
        hook.enabled = body.enabled
    hook.updated_at = now
    await session.flush()
    return hook


async def delete(session: AsyncSession, account_id: int, hook_id: int) -> None:
    hook = await require_hook(session, account_id, hook_id, for_update=True)
    await repository.delete_hook(session, hook)
    await session.flush()


async def retry(
    session: AsyncSession, account_id: int, hook_id: int, delivery_id: int, now: datetime
) -> HookDelivery:
    """A failed delivery goes back to pending, due now, with a new 24 h retry window."""
    await require_hook(session, account_id, hook_id)
    delivery = await repository.delivery_of_hook(session, hook_id, delivery_id)
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id} of hook {hook_id}.")
    if delivery.status != repository.FAILED:
        raise DeliveryNotFailed(
            f"Delivery {delivery_id} is {delivery.status}: only a failed delivery is retried.",
            currentStatus=delivery.status,
        )
    delivery.status = repository.PENDING
    delivery.next_attempt_at = now
    delivery.window_started_at = None
    delivery.updated_at = now
    await session.flush()
    return delivery
