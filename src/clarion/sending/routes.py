"""HTTP routes of the sending domain: per-recipient results, the account's messages and
test sends."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from clarion.auth import CurrentAccountId
from clarion.campaigns.schemas import CHANNEL_PATTERN
from clarion.db.deps import ReadSessionDep
from clarion.db.session import Database
from clarion.errors import ServiceUnavailable
from clarion.providers.base import Provider, ProviderConfigError
from clarion.schemas import Page, PageParams, PathId, page_params
from clarion.sending import repository, service
from clarion.sending.engine import start_providers
from clarion.sending.schemas import (
    AccountMessageOut,
    MessageOut,
    MessageStatus,
    TestSendIn,
    TestSendOut,
)

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


CampaignFilter = Annotated[
    str | None,
    Query(
        alias="campaignId",
        pattern=r"^(none|[1-9][0-9]{0,15})$",
        description="a campaign's id, or `none` for the messages of no campaign (replies "
        "to inbound keywords)",
        examples=["7", "none"],
    ),
]


@router.get("/messages", response_model=Page[AccountMessageOut], tags=["messages"])
async def account_messages(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    campaign_id: CampaignFilter = None,
    status: Annotated[MessageStatus | None, Query(description="only this status")] = None,
    phone: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="only to this phone (E.164, +33...)"),
    ] = None,
    channel: Annotated[
        str | None,
        Query(pattern=CHANNEL_PATTERN, description="only on this channel (sms, rcs, whatsapp)"),
    ] = None,
) -> Page[AccountMessageOut]:
    """The account's messages across its campaigns, newest first: campaign recipients and
    messages of no campaign (replies to inbound keywords, `campaignId` null). Filters
    combine. A `campaignId` of a campaign the account does not have is 404; an invalid
    `phone` is 422. Test sends are not listed (see `POST /campaigns/{id}/test`)."""
    campaign: int | str | None = campaign_id
    if campaign_id is not None and campaign_id != repository.NO_CAMPAIGN:
        campaign = int(campaign_id)
        await service.get_campaign(session, account_id, campaign)
    wanted_phone = service.normalize_phone_filter(phone) if phone is not None else None
    items, total = await repository.account_messages_page(
        session,
        account_id,
        campaign=campaign,
        status=status,
        phone=wanted_phone,
        channel=channel.lower() if channel else None,
        limit=page.limit,
        offset=page.offset,
    )
    return Page[AccountMessageOut](
        items=[AccountMessageOut.model_validate(m) for m in items],
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
