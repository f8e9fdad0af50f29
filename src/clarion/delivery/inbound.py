"""Inbound messages (a recipient replied), from every provider.

`handle_inbound` is the extension point: opt-out keywords (STOP/START) are handled here.
It runs inside the caller's transaction. Providers call it through the `ReceiptSink`
(`DbReceiptSink.inbound`) or from their webhook route.
"""

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.providers.base import InboundMessage

log = logging.getLogger(__name__)


async def handle_inbound(session: AsyncSession, items: Sequence[InboundMessage]) -> None:
    """Act on inbound messages. For now: log them (opt-out handling plugs in here)."""
    for item in items:
        log.info("inbound %s message from %s via %s", item.channel, item.from_phone, item.provider)
