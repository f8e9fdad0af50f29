"""The engine's door to the delivery domain: providers, send-rate limiters, receipts.

Those parts are built in their own domains; the engine reaches them only through these
functions, with inert stand-ins while a part is missing (no provider: nothing is claimed for
that channel; no limiter: no rate limit; no receipt service: nothing parked to apply).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.config import Settings
from clarion.db.session import Database
from clarion.providers.base import InboundMessage, Provider, Receipt, ReceiptSink

log = logging.getLogger(__name__)


class Limiter(Protocol):
    async def acquire(self, n: int) -> None: ...

    def on_throttle(self) -> None: ...

    def on_success(self) -> None: ...


class _NoLimit:
    async def acquire(self, n: int) -> None:
        return None

    def on_throttle(self) -> None:
        return None

    def on_success(self) -> None:
        return None


class _DropSink:
    async def receipts(self, items: Sequence[Receipt]) -> None:
        log.warning("no receipt service: %d receipts dropped", len(items))

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        log.warning("no receipt service: %d inbound messages dropped", len(items))


def build_providers(settings: Settings) -> dict[str, Provider]:
    """channel -> the provider chosen by the settings."""
    try:
        from clarion.providers.registry import build_providers as build
    except ImportError:  # pragma: no cover - until the delivery domain lands
        log.warning("no provider registry: the sender has no provider")
        return {}
    return dict(build(settings))


def build_limiter(settings: Settings, provider: Provider, sender: str | None) -> Limiter:
    """The token bucket of one provider sender (shared through Redis when configured). The
    rate is the provider's own (`rate_limit` messages/s, e.g. SMPP throughput), if any."""
    try:
        from clarion.sending import ratelimit  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # pragma: no cover - until the delivery domain lands
        return _NoLimit()
    factory: Any = getattr(ratelimit, "build_rate_limiter", None)
    if factory is None:  # pragma: no cover
        return _NoLimit()
    key = f"{provider.name}:{provider.channel}:{sender or ''}"
    return factory(settings, key, getattr(provider, "rate_limit", None))  # type: ignore[no-any-return]


def receipt_sink(db: Database) -> ReceiptSink:
    """Where providers push receipts and inbound messages."""
    try:
        from clarion.delivery.service import DbReceiptSink
    except ImportError:  # pragma: no cover - until the delivery domain lands
        return _DropSink()
    return DbReceiptSink(db)  # type: ignore[no-any-return]


async def apply_parked(
    session: AsyncSession, provider: str, provider_message_ids: Sequence[str]
) -> None:
    """Apply receipts that arrived before these provider ids were recorded."""
    if not provider_message_ids:
        return
    try:
        from clarion.delivery.service import apply_parked as apply
    except ImportError:  # pragma: no cover - until the delivery domain lands
        return
    await apply(session, provider, list(provider_message_ids))


async def sweep_parked(session: AsyncSession) -> int:
    """Apply parked receipts whose message got recorded meanwhile: a receipt ingested while
    the submit transaction was committing is parked after `apply_parked` looked."""
    from clarion.delivery.service import sweep_parked as sweep

    return await sweep(session)
