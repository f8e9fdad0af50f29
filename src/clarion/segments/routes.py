"""HTTP routes of segments (saved contact filters)."""

from typing import Annotated

from fastapi import APIRouter, Depends

from clarion.auth import CurrentAccountId
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.roles import MANAGER, requires
from clarion.schemas import Page, PageParams, PathId, page_params
from clarion.segments import repository, service
from clarion.segments.schemas import SegmentCount, SegmentIn, SegmentOut

router = APIRouter(prefix="/segments", tags=["segments"])
PageDep = Annotated[PageParams, Depends(page_params)]


@router.post("", status_code=201, response_model=SegmentOut, openapi_extra=requires(MANAGER))
async def create_segment(
    body: SegmentIn, account_id: CurrentAccountId, session: SessionDep
) -> SegmentOut:
    """Save a filter of the account's contacts (see the `ContactFilter` schema). A bad
    filter is 422 with one entry in `errors` per problem, each naming its path."""
    return service.segment_out(await service.create(session, account_id, body))


@router.get("", response_model=Page[SegmentOut])
async def list_segments(
    account_id: CurrentAccountId, session: ReadSessionDep, page: PageDep
) -> Page[SegmentOut]:
    """The account's segments, oldest first."""
    rows, total = await repository.segments_page(session, account_id, page.limit, page.offset)
    items = [service.segment_out(s) for s in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{segment_id}", response_model=SegmentOut)
async def get_segment(
    segment_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> SegmentOut:
    return service.segment_out(await service.require_segment(session, account_id, segment_id))


@router.put("/{segment_id}", response_model=SegmentOut, openapi_extra=requires(MANAGER))
async def replace_segment(
    segment_id: PathId, body: SegmentIn, account_id: CurrentAccountId, session: SessionDep
) -> SegmentOut:
    """Replace the name and the filter. Campaigns already given this segment keep the
    filter they were given (PUT their `segmentIds` again to take the new one)."""
    return service.segment_out(await service.replace(session, account_id, segment_id, body))


@router.delete("/{segment_id}", status_code=204, openapi_extra=requires(MANAGER))
async def delete_segment(
    segment_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> None:
    """Delete the segment. Campaigns that target it keep the filter they were given."""
    await service.delete(session, account_id, segment_id)


@router.get("/{segment_id}/count", response_model=SegmentCount)
async def count_segment(
    segment_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> SegmentCount:
    """How many of the account's contacts the segment matches now, counted in the
    database. Opted-out contacts are included: opting out is per channel, and a campaign's
    estimate leaves out those opted out of its own channel."""
    return SegmentCount(contacts=await service.count(session, account_id, segment_id))
