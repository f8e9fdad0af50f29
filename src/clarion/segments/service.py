"""Segments: saved filters of an account's contacts (create, replace, delete, count)."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import utcnow
from clarion.errors import NotFound, Unprocessable
from clarion.segments import repository
from clarion.segments.filters import Node, parse
from clarion.segments.models import Segment
from clarion.segments.schemas import SegmentIn, SegmentOut


def parsed_filter(raw: Any, path: str = "filter") -> Node:
    """The filter tree, or a 422 listing every problem with its path."""
    node, errors = parse(raw, path)
    if node is None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"Invalid filter: {detail}", errors=errors)
    return node


def stored_filter(raw: Any) -> Node:
    """A filter that was validated when it was stored."""
    return parsed_filter(raw)


async def require_segment(session: AsyncSession, account_id: int, segment_id: int) -> Segment:
    segment = await repository.segment_of(session, account_id, segment_id)
    if segment is None:
        raise NotFound(f"No segment {segment_id}.")
    return segment


async def create(session: AsyncSession, account_id: int, body: SegmentIn) -> Segment:
    parsed_filter(body.filter)
    now = utcnow()
    segment = Segment(
        account_id=account_id, name=body.name, filter=body.filter, created_at=now, updated_at=now
    )
    session.add(segment)
    await session.flush()
    return segment


async def replace(
    session: AsyncSession, account_id: int, segment_id: int, body: SegmentIn
) -> Segment:
    segment = await require_segment(session, account_id, segment_id)
    parsed_filter(body.filter)
    segment.name = body.name
    segment.filter = body.filter
    segment.updated_at = utcnow()
    await session.flush()
    return segment


async def delete(session: AsyncSession, account_id: int, segment_id: int) -> None:
    """Campaigns keep the filters they were given (snapshots), so nothing else changes."""
    segment = await require_segment(session, account_id, segment_id)
    await session.delete(segment)
    await session.flush()


async def count(session: AsyncSession, account_id: int, segment_id: int) -> int:
    segment = await require_segment(session, account_id, segment_id)
    return await repository.count_matching(session, account_id, stored_filter(segment.filter))


def segment_out(segment: Segment) -> SegmentOut:
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        filter=segment.filter,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )
