"""Inbound messages: STOP/START keywords (and RBM subscribe events) change opt-outs.

A keyword is the whole message, trimmed and case-insensitive ("stop", " STOP "), as carriers
and Twilio treat them; "please stop" is not a keyword. The opt-out applies to the channel
the message came in on, for every contact with that phone in any account (each account that
can reach the phone must honour it), recorded with the provider as source and the text as
detail.
"""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.history import Cause
from clarion.audience.optouts import contacts_with_phone, opt_in, opt_out
from clarion.config import Settings, get_settings
from clarion.providers.base import InboundMessage
from clarion.providers.rbm import RbmSubscribe, RbmUnsubscribe


def _keyword(text: str) -> str:
    return " ".join(text.split()).upper().strip(".!")


def action_of(item: InboundMessage, settings: Settings) -> str | None:
    """'out', 'in' or None (not a keyword)."""
    if isinstance(item, RbmUnsubscribe):
        return "out"
    if isinstance(item, RbmSubscribe):
        return "in"
    word = _keyword(item.text or "")
    if word in {k.upper() for k in settings.opt_out_keywords}:
        return "out"
    if word in {k.upper() for k in settings.opt_in_keywords}:
        return "in"
    return None


async def handle_inbound(
    session: AsyncSession,
    items: Sequence[InboundMessage],
    settings: Settings | None = None,
) -> dict[str, int]:
    """Apply the opt-out/opt-in keywords among `items` (in order, so STOP then START ends
    opted in). Returns counts of contacts changed: {"optedOut": n, "optedIn": m}."""
    settings = settings or get_settings()
    counts = {"optedOut": 0, "optedIn": 0}
    for item in items:
        action = action_of(item, settings)
        if action is None or not item.from_phone:
            continue
        contact_ids = await contacts_with_phone(session, item.from_phone)
        if not contact_ids:
            continue
        detail = (item.text or "")[:500]
        cause = Cause.provider(item.provider, inbound=True)
        if action == "out":
            counts["optedOut"] += await opt_out(session, contact_ids, item.channel, cause, detail)
        else:
            counts["optedIn"] += await opt_in(session, contact_ids, item.channel, cause, detail)
    return counts
