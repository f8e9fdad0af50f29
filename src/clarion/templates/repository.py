"""Queries on templates, always scoped to one account."""

from sqlalchemy import func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign
from clarion.db.dialect import is_postgres
from clarion.templates.models import Template


async def template_of(session: AsyncSession, account_id: int, template_id: int) -> Template | None:
    row = await session.execute(
        select(Template).where(Template.id == template_id, Template.account_id == account_id)
    )
    return row.scalar_one_or_none()


async def template_named(
    session: AsyncSession, account_id: int, channel: str, name: str, language: str
) -> Template | None:
    row = await session.execute(
        select(Template).where(
            Template.account_id == account_id,
            Template.channel == channel,
            Template.name == name,
            Template.language == language,
        )
    )
    return row.scalar_one_or_none()


async def templates_page(
    session: AsyncSession,
    account_id: int,
    *,
    channel: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Template], int]:
    where = [Template.account_id == account_id]
    if channel is not None:
        where.append(Template.channel == channel)
    if status is not None:
        where.append(Template.status == status)
    total = (
        await session.execute(select(func.count()).select_from(Template).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(Template).where(*where).order_by(Template.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


async def campaign_using_template(
    session: AsyncSession, account_id: int, template_id: int
) -> Campaign | None:
    """A live (not deleted) campaign past `draft` whose message names the template."""
    if is_postgres(session):
        # JSONB containment compares typed values: no cast that could fail on odd data.
        uses = type_coerce(Campaign.message, JSONB).contains({"templateId": template_id})
    else:
        uses = func.json_extract(Campaign.message, "$.templateId") == template_id
    row = await session.execute(
        select(Campaign)
        .where(
            Campaign.account_id == account_id,
            Campaign.status != "draft",
            Campaign.deleted_at.is_(None),
            uses,
        )
        .order_by(Campaign.id)
        .limit(1)
    )
    return row.scalar_one_or_none()
