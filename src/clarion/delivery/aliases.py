"""Provider ids that stand for another: the later parts of a long SMPP message.

A message stores one provider id (its first part's). Receipts may come for any part; the
SMPP provider maps them in memory while it runs and stores the mapping here as parts are
accepted, so that after a restart a receipt for a later part still finds its message
instead of staying parked.
"""

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import utcnow
from clarion.delivery import repository
from clarion.providers.base import Receipt


async def store(session: AsyncSession, provider: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Store (alias, provider_message_id) pairs in the caller's transaction."""
    if pairs:
        await repository.insert_aliases(session, provider, pairs, utcnow())


async def resolve(session: AsyncSession, receipts: Sequence[Receipt]) -> int:
    """Rewrite the provider id of receipts that name a stored alias to the id it stands for.
    Returns how many were rewritten."""
    by_provider: dict[str, list[Receipt]] = defaultdict(list)
    for r in receipts:
        by_provider[r.provider].append(r)
    rewritten = 0
    for provider, items in by_provider.items():
        known = await repository.resolve_aliases(
            session, provider, [r.provider_message_id for r in items]
        )
        for r in items:
            if r.provider_message_id in known:
                r.provider_message_id = known[r.provider_message_id]
                rewritten += 1
    return rewritten
