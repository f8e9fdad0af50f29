"""Template rules: which fields each channel takes, uniqueness, and deletion guards."""

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import utcnow
from clarion.errors import Conflict, NotFound, Unprocessable
from clarion.pricing.rates import DEFAULT_WHATSAPP_CATEGORY, WHATSAPP_CATEGORIES
from clarion.templates import repository
from clarion.templates.models import Template
from clarion.templates.render import variables_of
from clarion.templates.schemas import TemplateCreate, TemplateUpdate

WHATSAPP_MAX_BODY = 1024  # Meta's limit for a template body


async def require_template(session: AsyncSession, account_id: int, template_id: int) -> Template:
    """The account's template, or 404 (also for another account's template)."""
    template = await repository.template_of(session, account_id, template_id)
    if template is None:
        raise NotFound(f"Template {template_id} not found.")
    return template


def _check_channel_rules(
    channel: str,
    *,
    category: str | None,
    body: str,
    rich_card: Any,
    suggestions: Any,
    status: str | None,
) -> None:
    """What each channel accepts. WhatsApp: a category, no RCS content. RCS: rich card and
    suggestions, no category (its price category follows from the content). SMS: text only."""
    if channel == "whatsapp":
        if category is None:
            raise Unprocessable(
                "A WhatsApp template needs a category: marketing, utility or authentication.",
                field="category",
            )
        if category not in WHATSAPP_CATEGORIES:
            raise Unprocessable(
                "category must be marketing, utility or authentication.", field="category"
            )
        if len(body) > WHATSAPP_MAX_BODY:
            raise Unprocessable(
                f"A WhatsApp template body has at most {WHATSAPP_MAX_BODY} characters.",
                field="body",
            )
    else:
        if category is not None:
            raise Unprocessable(
                "Only WhatsApp templates have a category"
                + (
                    " (RCS is priced basic or single from the content)."
                    if channel == "rcs"
                    else "."
                ),
                field="category",
            )
        if status is not None and status != "approved":
            raise Unprocessable("Only WhatsApp templates have an approval status.", field="status")
    if channel != "rcs":
        if rich_card is not None:
            raise Unprocessable("Only RCS templates have a rich card.", field="richCard")
        if suggestions is not None:
            raise Unprocessable("Only RCS templates have suggestions.", field="suggestions")


def _dump(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [item.model_dump(by_alias=True, exclude_none=True) for item in value]
    return value.model_dump(by_alias=True, exclude_none=True)


async def _flush_unique(session: AsyncSession, template: Template) -> None:
    """Flush, turning a lost race on (account, channel, name, language) into a 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A {template.channel} template named {template.name!r} in language "
            f"{template.language!r} already exists."
        ) from exc


async def _check_unique(
    session: AsyncSession,
    account_id: int,
    channel: str,
    name: str,
    language: str,
    template_id: int | None = None,
) -> None:
    other = await repository.template_named(session, account_id, channel, name, language)
    if other is not None and other.id != template_id:
        raise Conflict(
            f"A {channel} template named {name!r} in language {language!r} already exists.",
            id=other.id,
        )


async def create_template(session: AsyncSession, account_id: int, body: TemplateCreate) -> Template:
    _check_channel_rules(
        body.channel,
        category=body.category,
        body=body.body,
        rich_card=body.rich_card,
        suggestions=body.suggestions,
        status=body.status,
    )
    template = Template(
        account_id=account_id,
        name=body.name,
        channel=body.channel,
        language=body.language,
        category=body.category,
        body=body.body,
        rich_card=_dump(body.rich_card),
        suggestions=_dump(body.suggestions),
        status=body.status or "approved",
        variables=variables_of(body.body),
    )
    await _check_unique(session, account_id, template.channel, template.name, template.language)
    session.add(template)
    await _flush_unique(session, template)
    return template


async def update_template(
    session: AsyncSession, account_id: int, template_id: int, body: TemplateUpdate
) -> Template:
    template = await require_template(session, account_id, template_id)
    sent = body.model_fields_set
    for field in ("name", "language", "body"):
        if field in sent and getattr(body, field) is None:
            raise Unprocessable(f"{field} cannot be null.", field=field)
    if "status" in sent and body.status is None:
        raise Unprocessable("status cannot be null.", field="status")
    category = body.category if "category" in sent else template.category
    text = body.body if body.body is not None else template.body
    rich_card = _dump(body.rich_card) if "rich_card" in sent else template.rich_card
    suggestions = _dump(body.suggestions) if "suggestions" in sent else template.suggestions
    _check_channel_rules(
        template.channel,
        category=category,
        body=text,
        rich_card=rich_card,
        suggestions=suggestions,
        status=body.status,
    )
    name = body.name or template.name
    language = body.language or template.language
    # Before touching the row: a query would autoflush the change into the unique index.
    await _check_unique(session, account_id, template.channel, name, language, template.id)
    template.name = name
    template.language = language
    template.category = category
    template.body = text
    template.rich_card = rich_card
    template.suggestions = suggestions
    template.variables = variables_of(text)
    if body.status is not None:
        template.status = body.status
    template.updated_at = utcnow()
    await _flush_unique(session, template)
    return template


async def sync_template(
    session: AsyncSession, account_id: int, body: TemplateCreate, provider_template_id: str | None
) -> bool:
    """Create or update the account's template of this channel, name and language as the
    provider lists it, under the rules of one made through the API; True when created. A
    WhatsApp template listed without a category takes the default one, which is what the
    estimate and the sender price it as."""
    if body.channel == "whatsapp" and body.category is None:
        body = body.model_copy(update={"category": DEFAULT_WHATSAPP_CATEGORY})
    existing = await repository.template_named(
        session, account_id, body.channel, body.name, body.language
    )
    if existing is None:
        template = await create_template(session, account_id, body)
    else:
        wanted = {"category": body.category, "body": body.body, "status": body.status}
        changed = {k: v for k, v in wanted.items() if getattr(existing, k) != v}
        template = existing
        if changed:  # an unchanged template keeps its updated_at (estimates stay current)
            changes = TemplateUpdate(**changed)
            template = await update_template(session, account_id, existing.id, changes)
    template.provider_template_id = provider_template_id
    await session.flush()
    return existing is None


async def delete_template(session: AsyncSession, template: Template) -> None:
    """Delete the template. Whether something still needs it is the caller's rule
    (`campaigns.template_use.delete_template` for the API)."""
    await repository.delete_template(session, template)


async def apply_provider_statuses(session: AsyncSession, changes: list[dict[str, str]]) -> int:
    """Template status changes a provider announced (`name`, `language`, `status`), applied
    to the WhatsApp templates of every account with that name and language; returns how many
    templates changed."""
    changed = 0
    for change in changes:
        changed += await repository.set_status_by_name(
            session, "whatsapp", change["name"], change["language"], change["status"]
        )
    return changed
