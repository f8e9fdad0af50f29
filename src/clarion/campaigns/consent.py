"""Whether a campaign leaves out recipients without consent: `marketing` campaigns of an
account whose compliance settings say `requireConsent` (transactional ones never do)."""

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.compliance.service import settings_for


async def consent_required(session: AsyncSession, account_id: int, purpose: str) -> bool:
    if purpose != "marketing":
        return False
    return (await settings_for(session, account_id)).require_consent
