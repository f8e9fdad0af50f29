"""Templates as campaigns use them: a campaign past `draft` keeps the template it names."""

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns import repository
from clarion.errors import Conflict
from clarion.templates import service as templates_service


async def delete_template(session: AsyncSession, account_id: int, template_id: int) -> None:
    """Delete the account's template (404 when it has none), unless a live campaign past
    `draft` names it (409 with that campaign's id)."""
    template = await templates_service.require_template(session, account_id, template_id)
    campaign = await repository.campaign_using_template(session, account_id, template_id)
    if campaign is not None:
        raise Conflict(
            f"Template {template_id} is used by campaign {campaign.id} ({campaign.status}); "
            "only templates used by draft campaigns alone can be deleted.",
            campaignId=campaign.id,
        )
    await templates_service.delete_template(session, template)
