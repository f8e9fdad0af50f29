from typing import cast

from fastapi import APIRouter, Request

from clarion.audit import service as audit
from clarion.auth import CurrentAccountId
from clarion.compliance import service
from clarion.compliance.schemas import (
    ComplianceIn,
    ComplianceOut,
    Day,
    FrequencyCapIn,
    SendingHoursRow,
)
from clarion.compliance.settings import DAYS, ComplianceSettings
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.roles import MANAGER, requires

router = APIRouter(tags=["compliance"])


def compliance_out(settings: ComplianceSettings) -> ComplianceOut:
    cap = settings.frequency_cap
    return ComplianceOut(
        sending_hours=[
            SendingHoursRow.model_construct(
                country=r.country,
                region=r.region,
                days=[cast(Day, d) for d in DAYS if d in r.days],
                start=r.start,
                end=r.end,
                holidays=r.holidays,
            )
            for r in settings.sending_hours
        ],
        frequency_cap=(
            FrequencyCapIn.model_construct(messages=cap.messages, period_hours=cap.period_hours)
            if cap
            else None
        ),
        require_consent=settings.require_consent,
        opt_out_keywords=list(settings.opt_out_keywords),
        opt_in_keywords=list(settings.opt_in_keywords),
        help_keywords=list(settings.help_keywords),
        opt_out_reply=settings.opt_out_reply,
        opt_in_reply=settings.opt_in_reply,
        help_reply=settings.help_reply,
    )


@router.get("/account/compliance", response_model=ComplianceOut)
async def compliance_settings(
    account_id: CurrentAccountId, session: ReadSessionDep
) -> ComplianceOut:
    """Sending hours, frequency cap, consent and inbound keywords of the account. A new
    account has no sending hours, no cap, no consent required and the default keywords."""
    return compliance_out(await service.settings_for(session, account_id))


@router.put("/account/compliance", response_model=ComplianceOut, openapi_extra=requires(MANAGER))
async def change_compliance_settings(
    body: ComplianceIn, request: Request, account_id: CurrentAccountId, session: SessionDep
) -> ComplianceOut:
    """Fields left out keep their value; a field given replaces it whole. A keyword may be in
    one list only (422). Keywords are stored trimmed, upper case, without accents. The
    presets are defaults to review, not legal advice."""
    settings = await service.update_settings(session, account_id, body)
    audit.describe(
        request,
        action="account.compliance.update",
        target=("account", account_id),
        detail=body.model_dump(mode="json", by_alias=True, exclude_unset=True),
    )
    return compliance_out(settings)
