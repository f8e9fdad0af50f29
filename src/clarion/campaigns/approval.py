"""Maker/checker: submit a draft, then another person approves (confirms) or rejects it.

The campaign's `approval` column holds the API's `approval` object. Approving goes through
`service.confirm_locked`, the very code confirm runs: the same pricing, reservation (402 and
nothing changed when credits are short) and status change.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.auth import Principal
from clarion.campaigns import service, states
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.errors import Forbidden, Unprocessable
from clarion.people.models import User
from clarion.schemas import utc_z


async def person(session: AsyncSession, caller: Principal) -> dict[str, Any]:
    """The caller as the approval object shows people."""
    if caller.kind == "user":
        user = await session.get(User, caller.id)
        name = user.name if user is not None else None
        return {"type": "user", "id": caller.id, "email": caller.email, "name": name}
    return {"type": "key", "id": caller.id, "email": None, "name": caller.name}


def _check_future(scheduled_at: datetime | None, now: datetime) -> None:
    if scheduled_at is not None and scheduled_at <= now:
        raise Unprocessable("scheduledAt must be in the future.", field="scheduledAt")


async def submit(
    session: AsyncSession,
    caller: Principal,
    campaign_id: int,
    scheduled_at: datetime | None,
    note: str | None,
) -> Campaign:
    """draft -> awaiting_approval. Nothing is reserved yet; the campaign is checked as
    confirm would check its definition (422), and can no longer be edited."""
    campaign = await service.require_campaign(
        session, caller.account_id, campaign_id, for_update=True
    )
    states.require("submit", campaign.status)
    now = utcnow()
    _check_future(scheduled_at, now)
    await service.validate(session, campaign)
    campaign.status = states.AWAITING_APPROVAL
    campaign.approval_scheduled_at = scheduled_at.astimezone(UTC) if scheduled_at else None
    campaign.approval = {
        "submittedBy": await person(session, caller),
        "submittedAt": utc_z(now),
        "scheduledAt": utc_z(campaign.approval_scheduled_at)
        if campaign.approval_scheduled_at
        else None,
        "note": note,
        "decidedBy": None,
        "decidedAt": None,
        "decision": None,
        "decisionNote": None,
    }
    campaign.updated_at = now
    await session.flush()
    return campaign


def _decide(
    campaign: Campaign, who: dict[str, Any], decision: str, note: str | None, now: datetime
) -> None:
    campaign.approval = {
        **(campaign.approval or {}),
        "decidedBy": who,
        "decidedAt": utc_z(now),
        "decision": decision,
        "decisionNote": note,
    }


async def approve(session: AsyncSession, caller: Principal, campaign_id: int) -> Campaign:
    """awaiting_approval -> sending or scheduled, by a signed-in user other than the
    submitter (an API key cannot approve: 403)."""
    campaign = await service.require_campaign(
        session, caller.account_id, campaign_id, for_update=True
    )
    if caller.kind != "user":
        raise Forbidden("An API key cannot approve: a signed-in person must.", reason="approver")
    submitted_by = (campaign.approval or {}).get("submittedBy") or {}
    if submitted_by.get("type") == "user" and submitted_by.get("id") == caller.id:
        raise Forbidden(
            "You submitted this campaign: another person must approve it.", reason="approver"
        )
    await service.confirm_locked(
        session, campaign, campaign.approval_scheduled_at, action="approve"
    )
    _decide(campaign, await person(session, caller), "approved", None, utcnow())
    await session.flush()
    return campaign


async def reject(session: AsyncSession, caller: Principal, campaign_id: int, note: str) -> Campaign:
    """awaiting_approval -> draft, with the reason."""
    campaign = await service.require_campaign(
        session, caller.account_id, campaign_id, for_update=True
    )
    states.require("reject", campaign.status)
    now = utcnow()
    campaign.status = states.DRAFT
    campaign.approval_scheduled_at = None
    _decide(campaign, await person(session, caller), "rejected", note, now)
    campaign.updated_at = now
    await session.flush()
    return campaign
