from typing import Annotated

from fastapi import APIRouter, Depends, Query

from clarion.auth import CurrentAccountId
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.schemas import Page, PageParams, PathId, page_params
from clarion.templates import repository, service
from clarion.templates.models import Template
from clarion.templates.schemas import (
    Channel,
    TemplateCreate,
    TemplateOut,
    TemplateStatus,
    TemplateUpdate,
)

router = APIRouter(prefix="/templates", tags=["templates"])


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(
    body: TemplateCreate, account_id: CurrentAccountId, session: SessionDep
) -> Template:
    """Create a message template.

    - `channel`: sms, rcs or whatsapp (any case). `language` defaults to `en`.
      (`name`, `channel`, `language`) is unique in the account: 409 with the existing `id`.
    - WhatsApp: `category` (marketing, utility, authentication) is required; `status`
      defaults to `approved` (`pending`, `rejected`, `paused` are the others; only an
      approved template can be confirmed for sending). The body's variables, in order of
      first appearance, become the template's body parameters. Body at most 1024 characters.
    - RCS: optional `richCard` `{title?, description?, media? (http(s) URL)}` and up to 11
      `suggestions` `{type: reply|url|dial, text (<= 25 chars), postbackData?, url | phone}`.
      No category: RCS is priced `basic` or `single` from the content.
    - SMS: text only.
    - `variables` lists `{{name}}` placeholders of the body (spaces inside the braces are
      allowed): `firstName`, `lastName`, `phone`, `attributes.NAME`, or any other name filled
      from a campaign's `templateParams`.
    """
    return await service.create_template(session, account_id, body)


@router.get("", response_model=Page[TemplateOut])
async def list_templates(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    channel: Annotated[Channel | None, Query(description="sms, rcs or whatsapp")] = None,
    status: Annotated[TemplateStatus | None, Query(description="approval status")] = None,
) -> Page[TemplateOut]:
    """The account's templates, oldest first."""
    rows, total = await repository.templates_page(
        session, account_id, channel=channel, status=status, limit=page.limit, offset=page.offset
    )
    return Page(
        items=[TemplateOut.model_validate(t) for t in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{template_id}", response_model=TemplateOut)
async def get_template(
    template_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> Template:
    return await service.require_template(session, account_id, template_id)


@router.put("/{template_id}", response_model=TemplateOut)
async def update_template(
    template_id: PathId, body: TemplateUpdate, account_id: CurrentAccountId, session: SessionDep
) -> Template:
    """Partial update: only the fields sent change. The channel cannot change. `status`
    (WhatsApp only) is set here until a provider sync keeps it in step. `richCard` or
    `suggestions` sent as null remove them; `category` cannot be removed from a WhatsApp
    template."""
    return await service.update_template(session, account_id, template_id, body)
