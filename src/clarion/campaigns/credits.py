"""The credits invariants that need campaigns, on top of the ledger's own."""

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.accounts import repository as accounts_repository
from clarion.campaigns import repository, states

OPEN = (states.SCHEDULED, states.SENDING, states.PAUSED)  # their reservation is still held
CLOSED = (states.DRAFT, states.COMPLETED, states.CANCELLED)  # they must hold nothing


async def check_invariants(session: AsyncSession, account_id: int) -> list[str]:
    """The ledger's invariants (`ledger.check_invariants`), then: reserved == the sum of open
    reservations (campaigns scheduled, sending or paused), and no closed campaign still holds
    credits. Returns the broken ones (empty: all hold)."""
    problems = await ledger.check_invariants(session, account_id)
    credits = await ledger.credits_of(session, account_id)
    if credits is None:
        return problems
    _, reserved = credits
    held = await accounts_repository.held_by_campaign(session, account_id)
    statuses = await repository.statuses_of(session, account_id, sorted(held))
    open_sum = sum(amount for cid, amount in held.items() if statuses.get(cid) in OPEN)
    if open_sum != reserved:
        problems.append(f"open reservations {open_sum} != reserved {reserved}")
    for cid in sorted(held):
        if statuses.get(cid) in CLOSED:
            problems.append(f"closed campaign {cid} still holds {held[cid]} in reserve")
    # Slices set aside part of what a campaign holds, never more (a campaign that holds
    # nothing has no slice).
    sliced = await accounts_repository.sliced_campaigns(session, account_id)
    for cid, unsliced in (await accounts_repository.unsliced_holds(session, sliced)).items():
        if unsliced < 0:
            problems.append(f"campaign {cid}'s slices set aside {-unsliced} more than it holds")
    return problems
