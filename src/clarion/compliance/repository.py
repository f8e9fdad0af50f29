"""Every query of the compliance domain."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.compliance.models import ComplianceSettingsRow


async def settings_row(session: AsyncSession, account_id: int) -> ComplianceSettingsRow | None:
    row = await session.execute(
        select(ComplianceSettingsRow).where(ComplianceSettingsRow.account_id == account_id)
    )
    return row.scalar_one_or_none()


async def settings_row_for_update(
    session: AsyncSession, account_id: int
) -> ComplianceSettingsRow | None:
    """The row, locked on PostgreSQL so that two concurrent PUTs apply one after the other."""
    row = await session.execute(
        select(ComplianceSettingsRow)
        .where(ComplianceSettingsRow.account_id == account_id)
        .with_for_update()
    )
    return row.scalar_one_or_none()
