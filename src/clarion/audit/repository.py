from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audit.models import AuditEvent


async def events_page(
    session: AsyncSession,
    account_id: int,
    *,
    action: str | None,
    actor_id: int | None,
    actor_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEvent], int]:
    """The account's audit rows, newest first (`until` exclusive)."""
    where = [AuditEvent.account_id == account_id]
    if action:
        # `campaign` matches every campaign.* action; `campaign.confirm` only itself.
        where.append(
            (AuditEvent.action == action)
            | AuditEvent.action.startswith(action + ".", autoescape=True)
        )
    if actor_id is not None:
        where.append(AuditEvent.actor_id == actor_id)
    if actor_type:
        where.append(AuditEvent.actor_type == actor_type)
    if since is not None:
        where.append(AuditEvent.at >= since)
    if until is not None:
        where.append(AuditEvent.at < until)
    total = (
        await session.execute(select(func.count()).select_from(AuditEvent).where(*where))
    ).scalar()
    rows = await session.execute(
        select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total or 0)
