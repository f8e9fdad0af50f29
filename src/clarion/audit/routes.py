from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from clarion.audit import repository
from clarion.audit.models import AuditEvent
from clarion.audit.schemas import ActorOut, AuditEventOut, TargetOut
from clarion.auth import CurrentAccountId
from clarion.db.deps import ReadSessionDep
from clarion.errors import Unprocessable
from clarion.roles import MANAGER, requires
from clarion.schemas import MAX_ID, Page, PageParams, page_params

router = APIRouter(tags=["account"])


def _when(value: str | None, field: str, *, end: bool) -> datetime | None:
    """A date (YYYY-MM-DD, UTC, inclusive) or an RFC 3339 time with an offset."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise Unprocessable(
            f"{field} must be a date (YYYY-MM-DD) or an RFC 3339 time with an offset.",
            field=field,
        )
    return at.astimezone(UTC)


def _out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=row.id,
        at=row.at,
        actor=ActorOut(type=row.actor_type, id=row.actor_id, name=row.actor_name),  # type: ignore[arg-type]
        action=row.action,
        target=TargetOut(type=row.target_type, id=row.target_id) if row.target_type else None,
        detail=row.detail or {},
    )


@router.get("/account/audit", response_model=Page[AuditEventOut], openapi_extra=requires(MANAGER))
async def audit_trail(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    action: Annotated[
        str | None,
        Query(max_length=64, description="an action (campaign.confirm) or its resource (campaign)"),
    ] = None,
    actor_id: Annotated[
        int | None,
        Query(
            alias="actorId",
            ge=1,
            le=MAX_ID,
            description="a user's or key's id (users and keys are numbered apart: add "
            "actorType to tell them apart)",
        ),
    ] = None,
    actor_type: Annotated[
        str | None, Query(alias="actorType", pattern="^(user|key|admin|system)$")
    ] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="YYYY-MM-DD (UTC, inclusive) or RFC 3339")
    ] = None,
    to: Annotated[
        str | None, Query(description="YYYY-MM-DD (UTC, inclusive) or RFC 3339 (exclusive)")
    ] = None,
) -> Page[AuditEventOut]:
    """Every change made to the account, newest first: who (`actor`: a user, an API key,
    the operator's admin token, or the system), what (`action`, `target`) and how
    (`detail`: the request's JSON body without secrets, or what changed)."""
    since, until = _when(from_, "from", end=False), _when(to, "to", end=True)
    rows, total = await repository.events_page(
        session,
        account_id,
        action=action,
        actor_id=actor_id,
        actor_type=actor_type,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(items=[_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)
