"""Campaign endpoints (HTTP only; the rules are in service.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.auth import CurrentAccountId, CurrentPrincipal, request_now, require_role
from clarion.campaigns import (
    approval,
    repository,
    service,
    states,
    template_use,
)
from clarion.campaigns.idempotency import idempotent
from clarion.campaigns.models import Campaign
from clarion.campaigns.presenter import present, present_one
from clarion.campaigns.schemas import (
    CHANNEL_PATTERN,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ConfirmIn,
    EstimateOut,
    PriceOut,
    RejectIn,
    StatsOut,
    SubmitIn,
    WinnerIn,
    normalize_channel,
)
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.errors import Unprocessable
from clarion.roles import MANAGER, requires
from clarion.schemas import Page, PageParams, PathId, page_params

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Replays the first successful answer (status and body, with header "
        "`Idempotent-Replayed: true`) for the same key and body within 24 h; the same key "
        "with another body is 422. A concurrent duplicate waits for the first request and "
        "replays its answer. Errors are not stored: a retry after a 4xx runs again.",
        json_schema_extra={"pattern": "^[ -~]{1,255}$"},
    ),
]
# Query filters: an empty value is no filter (an HTML form sends one for "any").
STATUS_FILTER = {"enum": ["", *states.STATUSES]}
CHANNEL_FILTER = {"pattern": "^(" + CHANNEL_PATTERN.strip("^$") + ")?$"}
DAY = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}


async def _json(session: AsyncSession, c: Campaign) -> dict[str, Any]:
    return (await present_one(session, c)).model_dump(mode="json", by_alias=True)


@router.get("", response_model=Page[CampaignOut])
async def list_campaigns(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        str | None,
        Query(description="one of " + ", ".join(states.STATUSES), json_schema_extra=STATUS_FILTER),
    ] = None,
    channel: Annotated[
        str | None, Query(description="sms, rcs or whatsapp", json_schema_extra=CHANNEL_FILTER)
    ] = None,
) -> Page[CampaignOut]:
    """The account's campaigns, newest first. Deleted campaigns are not listed."""
    status, channel = status or None, channel or None
    if status is not None and status not in states.STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(states.STATUSES)}.", field="status")
    if channel is not None:
        try:
            channel = normalize_channel(channel)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="channel") from None
    rows, total = await repository.campaigns_page(
        session, account_id, status=status, channel=channel, limit=page.limit, offset=page.offset
    )
    return Page(
        items=await present(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.post("", status_code=201, response_model=CampaignOut)
async def create_campaign(
    body: CampaignCreate,
    request: Request,
    account_id: CurrentAccountId,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a draft. The audience is the members of `listIds` and the contacts matching
    the segments of `segmentIds` (their filters are copied onto the campaign now: a later
    edit or deletion of a segment does not change it), narrowed by `filter`; a `filter`
    alone selects among all the account's contacts. It may be empty while drafting (confirm
    needs one of `listIds`, `segmentIds`, `filter`). Variables in
    the text must be contact fields (`firstName`, `lastName`, `phone`, `attributes.NAME`) or
    keys of `message.templateParams` (422 otherwise). Sender: alphanumeric (1-11 letters,
    digits or spaces, with a letter), a short code (3-8 digits) or a number (+ and 6-15
    digits)."""

    async def action() -> tuple[int, Any]:
        link_base = request.app.state.settings.link_base
        return 201, await _json(session, await service.create(session, account_id, body, link_base))

    return await idempotent(session, account_id, request, idempotency_key, action)


@router.get("/stats", response_model=StatsOut)
async def campaign_stats(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    from_: Annotated[
        str | None,
        Query(alias="from", description="YYYY-MM-DD, UTC, inclusive", json_schema_extra=DAY),
    ] = None,
    to: Annotated[
        str | None, Query(description="YYYY-MM-DD, UTC, inclusive", json_schema_extra=DAY)
    ] = None,
    channel: Annotated[
        str | None, Query(description="sms, rcs or whatsapp", json_schema_extra=CHANNEL_FILTER)
    ] = None,
) -> StatsOut:
    """Delivery statistics of the campaigns that started sending between `from` and `to`
    (UTC days, inclusive), summed overall, by channel and by start day.

    Computed from the counters each campaign row keeps (a partition of its recipients by
    message status, moved in the same transaction as every message change), so this is a
    GROUP BY over campaign rows, independent of the number of messages. Deleted campaigns
    still count: their messages were sent and paid for."""
    return await service.stats(session, account_id, from_, to, channel)


@router.get("/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> CampaignOut:
    return await present_one(
        session, await service.require_campaign(session, account_id, campaign_id)
    )


@router.put("/{campaign_id}", response_model=CampaignOut)
async def update_campaign(
    campaign_id: PathId,
    body: CampaignUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> CampaignOut:
    """Partial update, allowed in `draft` and `scheduled` (409 naming the status otherwise).
    Editing a scheduled campaign re-prices it and replaces its reservation in one
    transaction: 402 with `required` and `available`, and nothing changed, when it no longer
    fits. An editor edits drafts; a scheduled campaign holds credits, so editing it needs
    the manager role (403 with `requiredRole`)."""
    await _manager_unless_draft(session, principal, campaign_id, "update")
    return await present_one(
        session,
        await service.update(
            session, principal.account_id, campaign_id, body, request.app.state.settings.link_base
        ),
    )


async def _manager_unless_draft(
    session: SessionDep, principal: CurrentPrincipal, campaign_id: int, action: str
) -> None:
    """An editor may do `action` to a draft; where the campaign is past draft (and the
    action is legal there: otherwise the 409 says more) it takes a manager."""
    campaign = await service.require_campaign(session, principal.account_id, campaign_id)
    if campaign.status != states.DRAFT and states.allowed(action, campaign.status):
        require_role(principal, MANAGER)


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(
    campaign_id: PathId, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Soft delete: allowed in draft, scheduled (cancelled first, credits released),
    completed and cancelled; 409 while sending, paused or awaiting approval. A deleted
    campaign is 404 and no longer listed, but its ledger rows and its share of the
    statistics remain. An editor deletes drafts; any other status needs the manager role."""
    await _manager_unless_draft(session, principal, campaign_id, "delete")
    await service.delete(session, principal.account_id, campaign_id)
    return Response(status_code=204)


@router.post("/{campaign_id}/calculateGoal", response_model=EstimateOut)
async def calculate_goal(
    campaign_id: PathId, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> dict[str, Any]:
    """Resolve the audience as it would be sent now and price it. Audience: members of any
    of `listIds` and contacts matching any segment of `segmentIds`, narrowed by `filter`
    (alone: all the account's contacts it matches), minus members of `excludeListIds`,
    minus contacts opted out of the channel, each contact once. `excluded.duplicates`
    counts memberships (a list holding the contact, a segment matching it) beyond a
    contact's first,
    `optedOut` the opted-out contacts, `invalid` the contacts whose country has no rate (they
    cannot be sent). `breakdown` has one row per country (and per rate category for RCS and
    WhatsApp). With SMS fallback on RCS, `maxPrice` is the price if everybody fell back and
    `worstCase` (each recipient at the dearer of the two) is what confirm reserves. Stored
    on draft and scheduled campaigns.

    Marketing campaigns (compliance settings): `excluded.frequencyCapped` counts contacts
    who already reached the account's frequency cap (left out, not priced); `schedule` says
    how many recipients are inside their sending hours now (`sendableNow`) and how many wait
    (`held`), when the first may go (`firstSendAt`: now when some may) and when the last
    window opens (`lastWindowOpensAt`)."""
    return await service.calculate_goal(session, account_id, campaign_id, request_now(request))


@router.get("/{campaign_id}/price", response_model=PriceOut)
async def get_price(
    campaign_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> dict[str, Any]:
    """The stored estimate, re-priced first (draft/scheduled) when the audience, the message,
    the opt-outs, the template or the rates changed. For a scheduled campaign this only
    reports: the reservation moves on an edit, never on this GET."""
    return await service.price(session, account_id, campaign_id)


@router.put("/{campaign_id}/confirm", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def confirm_campaign(
    campaign_id: PathId,
    body: ConfirmIn,
    request: Request,
    account_id: CurrentAccountId,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """`{}` sends now (`sending`), `{"scheduledAt": future}` schedules. Prices the campaign
    and reserves that many credits (the worst case for RCS with fallback); 402 with
    `required` and `available` and nothing changed when they are not available. 422 for a
    past `scheduledAt`, no list, an empty audience or message, an unapproved template, or an
    SMS over 10 parts for any recipient. 409 unless `draft`, and 409 with type
    `.../approval-required` when the account requires approval (`PUT /account/settings`)."""

    async def action() -> tuple[int, Any]:
        campaign = await service.confirm(
            session, account_id, campaign_id, body.scheduled_at, request_now(request)
        )
        return 200, await _json(session, campaign)

    return await idempotent(session, account_id, request, idempotency_key, action)


@router.put("/{campaign_id}/pause", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def pause_campaign(
    campaign_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> CampaignOut:
    """sending -> paused: no new message is handed to a provider; in-flight ones finish."""
    return await present_one(session, await service.pause(session, account_id, campaign_id))


@router.put("/{campaign_id}/resume", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def resume_campaign(
    campaign_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> CampaignOut:
    """paused -> sending."""
    return await present_one(session, await service.resume(session, account_id, campaign_id))


@router.put("/{campaign_id}/cancel", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def cancel_campaign(
    campaign_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> CampaignOut:
    """scheduled, sending or paused -> cancelled. Queued messages become `skipped`; the
    reservation is released (at once, or when the last in-flight message is recorded)."""
    return await present_one(session, await service.cancel(session, account_id, campaign_id))


@router.put(
    "/{campaign_id}/abTest/winner", response_model=CampaignOut, openapi_extra=requires(MANAGER)
)
async def decide_ab_test(
    campaign_id: PathId,
    body: WinnerIn,
    request: Request,
    account_id: CurrentAccountId,
    session: SessionDep,
) -> CampaignOut:
    """Decide the campaign's A/B test now, before `decideAfterMinutes` ran out: `name`
    wins, the rest of the audience is queued with its message, and the reservation of the
    remainder (held at the dearest variant's price) is corrected to the winner's price,
    the difference released. Allowed while the campaign is `sending` or `paused` (a paused
    campaign's remainder is queued once it resumes); 409 in any other status, for a
    campaign without an A/B test, and once the test is decided (by this endpoint or by the
    scheduler: exactly one decision is ever recorded). 422 for an unknown variant name."""
    campaign = await service.decide_winner(
        session, account_id, campaign_id, body.name, request_now(request)
    )
    return await present_one(session, campaign)


@router.put("/{campaign_id}/submit", response_model=CampaignOut)
async def submit_campaign(
    campaign_id: PathId, body: SubmitIn, principal: CurrentPrincipal, session: SessionDep
) -> CampaignOut:
    """Submit a draft for approval (`draft` -> `awaiting_approval`), to be sent at once or
    at `scheduledAt` (future) when approved. Nothing is reserved yet and the campaign can
    no longer be edited; its definition is checked now (422). 409 unless `draft`."""
    return await present_one(
        session,
        await approval.submit(session, principal, campaign_id, body.scheduled_at, body.note),
    )


@router.put("/{campaign_id}/approve", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def approve_campaign(
    campaign_id: PathId, principal: CurrentPrincipal, session: SessionDep
) -> CampaignOut:
    """Approve a submitted campaign: it is confirmed exactly as `confirm` would, with the
    submitted `scheduledAt` (402 with `required` and `available`, nothing changed, when
    credits are short; 422 when that time has passed). Only a signed-in user other than the
    submitter may approve: an API key, or the submitter, gets 403. 409 unless
    `awaiting_approval`."""
    return await present_one(session, await approval.approve(session, principal, campaign_id))


@router.put("/{campaign_id}/reject", response_model=CampaignOut, openapi_extra=requires(MANAGER))
async def reject_campaign(
    campaign_id: PathId, body: RejectIn, principal: CurrentPrincipal, session: SessionDep
) -> CampaignOut:
    """Return a submitted campaign to `draft`, with a `note` saying why. 409 unless
    `awaiting_approval`."""
    return await present_one(
        session, await approval.reject(session, principal, campaign_id, body.note)
    )


# -- DELETE /templates/{id}: the guard is a campaigns rule -----------------------------------
templates_router = APIRouter(prefix="/templates", tags=["templates"])


@templates_router.delete("/{template_id}", status_code=204)
async def delete_template(
    template_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> None:
    """Delete a template. A template named by a campaign that is past `draft` (scheduled,
    sending, paused, completed, cancelled; deleted campaigns do not count) is 409, with the
    campaign's id as `campaignId`: its history and any pending sends depend on it."""
    await template_use.delete_template(session, account_id, template_id)
