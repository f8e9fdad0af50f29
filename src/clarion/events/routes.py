"""Server-sent event streams (HTTP only; the feed is hub.py)."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from clarion.auth import CurrentAccountId
from clarion.campaigns import repository, service
from clarion.events import hub as feed
from clarion.events.hub import Event, EventHub, parse_event_id
from clarion.schemas import PathId

router = APIRouter(tags=["events"])

_STREAM_DOC = {
    "200": {
        "description": "`text/event-stream`: `campaign.updated` events (data: the campaign as "
        "`GET /campaigns/{id}` answers it) and `import.updated` events (data: the import as "
        "`GET /imports/{id}` answers it), each with an `id:`; a comment line every 15 s.",
        # Before OpenAPI 3.2 (itemSchema), the schema of an event stream describes each event.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": ["campaign.updated", "import.updated"]},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
}
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="resume: first send the current state of every object changed since "
        "the event with this id",
    ),
]


def _frame(event: Event) -> str:
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.name}\ndata: {data}\n\n"


async def _stream(
    request: Request,
    account_id: int,
    campaign_id: int | None,
    first: Callable[[], Awaitable[list[Event]]],
) -> AsyncIterator[str]:
    """Subscribed first, then the first events read: a change in between is sent twice
    rather than lost. The subscription ends with the generator (client gone)."""
    hub: EventHub = request.app.state.events
    keepalive: float = request.app.state.settings.events_keepalive_seconds
    sub = hub.subscribe(account_id, campaign_id)
    try:
        yield "retry: 1000\n\n"
        for event in await first():
            yield _frame(event)
        while True:
            try:
                async with asyncio.timeout(keepalive):
                    await sub.wake.wait()
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            for event in sub.take():
                yield _frame(event)
    finally:
        hub.unsubscribe(sub)


def _response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/events", response_class=StreamingResponse, responses=_STREAM_DOC)  # type: ignore[arg-type]
async def account_events(
    request: Request, account_id: CurrentAccountId, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The account's live events: every campaign and import change, within a second of it
    whichever process made it, at most twice a second per object (the latest state wins).
    With `Last-Event-ID` the stream first sends the current state of every object changed
    since that event."""
    hub: EventHub = request.app.state.events
    since = parse_event_id(last_event_id)

    async def first() -> list[Event]:
        return await hub.changed_since(account_id, since) if since else []

    return _response(_stream(request, account_id, None, first))


@router.get(
    "/campaigns/{campaign_id}/events",
    response_class=StreamingResponse,
    responses=_STREAM_DOC,  # type: ignore[arg-type]
)
async def campaign_events(
    campaign_id: PathId,
    request: Request,
    account_id: CurrentAccountId,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """One campaign's live events, starting with its current state (404 for a campaign the
    account does not have)."""
    db = request.app.state.db
    async with db.session(write=False) as session:
        await service.require_campaign(session, account_id, campaign_id)  # 404 before 200

    async def first() -> list[Event]:
        async with db.session(write=False) as session:
            campaign = await repository.campaign_of(session, account_id, campaign_id)
            return await feed.campaign_events(session, [campaign]) if campaign else []

    return _response(_stream(request, account_id, campaign_id, first))
