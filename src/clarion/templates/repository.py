"""Queries on templates, always scoped to one account."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
