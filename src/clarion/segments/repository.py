"""Every query of the segments package."""

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.db.dialect import is_postgres
from clarion.segments.compile import to_sql
from clarion.segments.filters import Node
from clarion.segments.models import Segment


async def segment_of(session: AsyncSession, account_id: int, segment_id: int) -> Segment | None:
    return (
        await session.execute(
            select(Segment).where(Segment.id == segment_id, Segment.account_id == account_id)
        )
    ).scalar_one_or_none()


async def segments_of(
    session: AsyncSession, account_id: int, ids: Sequence[int]
) -> dict[int, Segment]:
    """id -> segment, for those of `ids` the account has."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Segment).where(Segment.account_id == account_id, Segment.id.in_(list(ids)))
    )
    return {s.id: s for s in rows.scalars()}


async def segments_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[Segment], int]:
    where = Segment.account_id == account_id
    total = (await session.execute(select(func.count()).where(where))).scalar_one()
    rows = await session.execute(
        select(Segment).where(where).order_by(Segment.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


async def count_matching(session: AsyncSession, account_id: int, node: Node) -> int:
    """How many of the account's contacts the filter matches (one COUNT in the database)."""
    stmt = select(func.count()).where(
        Contact.account_id == account_id, to_sql(node, postgres=is_postgres(session))
    )
    return int((await session.execute(stmt)).scalar_one())
