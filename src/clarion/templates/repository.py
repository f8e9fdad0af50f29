"""Queries on templates, always scoped to one account."""

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import utcnow
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


async def set_status_by_name(
    session: AsyncSession, channel: str, name: str, language: str, status: str
) -> int:
    """Set the status of every account's template of this channel, name and language (the
    language compared case-insensitively, `-` read as `_`); returns how many changed."""
    result = await session.execute(
        update(Template)
        .where(
            Template.channel == channel,
            Template.name == name,
            func.lower(func.replace(Template.language, "-", "_"))
            == language.replace("-", "_").lower(),
        )
        .values(status=status, updated_at=utcnow())
    )
    return result.rowcount or 0  # type: ignore[attr-defined,no-any-return]


async def delete_template(session: AsyncSession, template: Template) -> None:
    await session.delete(template)
    await session.flush()
