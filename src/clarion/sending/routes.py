"""HTTP routes of the sending domain: per-recipient results and test sends."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from clarion.auth import CurrentAccountId
from clarion.db.deps import ReadSessionDep
from clarion.db.session import Database
from clarion.errors import ServiceUnavailable
from clarion.providers.base import Provider, ProviderConfigError
from clarion.schemas import Page, PageParams, PathId, page_params
from clarion.sending import service
from clarion.sending.engine import start_providers
from clarion.sending.schemas import MessageOut, MessageStatus, TestSendIn, TestSendOut

router = APIRouter(tags=["campaigns"])


@router.get(
    "/campaigns/{campaign_id}/messages",
    response_model=Page[MessageOut],
    responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV of all"}},
)
async def list_messages(
    campaign_id: PathId,
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    request: Request,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[MessageStatus | None, Query(description="only this status")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> object:
    """Per-recipient results, oldest first. With `Accept: text/csv` the answer is a CSV of
    every matching recipient (pagination ignored), streamed. Test sends are not recipients
    and are not listed (see `POST /campaigns/{id}/test`)."""
    campaign = await service.get_campaign(session, account_id, campaign_id)
    if accept and "text/csv" in accept.lower():
        db: Database = request.app.state.db
        return StreamingResponse(
            service.messages_csv(db, campaign_id, status),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-messages.csv"'
            },
        )
    items, total = await service.list_messages(
        session, campaign_id, status, page.limit, page.offset
    )
    clicks = await service.clicks_of(session, campaign, items)
    return Page[MessageOut](
        items=[service.message_out(m, clicks.get(m.id)) for m in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def _providers(request: Request) -> dict[str, Provider]:
    """The engine's providers when it runs here; else ones built for test sends."""
    engine = getattr(request.app.state, "engine", None)
    if engine is not None and engine.providers:
        return dict(engine.providers)
    providers: dict[str, Provider] | None = getattr(request.app.state, "test_providers", None)
    if providers is None:
        try:
            providers = await start_providers(request.app.state.settings, request.app.state.db)
        except ProviderConfigError as exc:
            raise ServiceUnavailable(f"No provider to send with: {exc}") from exc
        request.app.state.test_providers = providers
    return providers


@router.post("/campaigns/{campaign_id}/test", response_model=TestSendOut)
async def test_send(
    campaign_id: PathId,
    body: TestSendIn,
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    request: Request,
) -> TestSendOut:
    """Send the campaign's message, rendered with its `templateParams` and no contact, to 1
    to 10 phones now, in any campaign status (the status does not change). Each accepted
    message is charged to the account's available credits (not to the campaign's
    reservation) and does not count in the campaign's stats. Answers each phone's result."""
    campaign = await service.get_campaign(session, account_id, campaign_id)
    phones = service.normalize_phones(body.phones)
    target = service.TestTarget(campaign.id, campaign.account_id, campaign.channel)
    results = await service.test_send(
        request.app.state.settings,
        request.app.state.db,
        await _providers(request),
        target,
        phones,
    )
    return TestSendOut(campaign_id=campaign_id, results=results)
