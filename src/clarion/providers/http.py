"""What the HTTP providers share: one pooled aiohttp session per provider, bounded
concurrency, and the mapping of transport failures to RETRY."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from clarion.providers.base import OutboundMessage, Outcome, SubmitResult

TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError)


def new_session(*, connections: int = 100, timeout: float = 15.0) -> aiohttp.ClientSession:
    """One pooled session (keep-alive connections, DNS cache) for the provider's lifetime."""
    connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0)),
        raise_for_status=False,
    )


async def submit_all(
    batch: Sequence[OutboundMessage],
    send: Callable[[OutboundMessage], Awaitable[SubmitResult]],
    limit: asyncio.Semaphore,
) -> list[SubmitResult]:
    """Send each message with bounded concurrency; a transport failure is that message's
    RETRY, never an exception out of submit()."""

    async def one(message: OutboundMessage) -> SubmitResult:
        async with limit:
            try:
                return await send(message)
            except TRANSPORT_ERRORS as exc:
                return SubmitResult(
                    message.id,
                    Outcome.RETRY,
                    error_message=f"{type(exc).__name__}: {exc or 'timeout'}",
                )

    return list(await asyncio.gather(*(one(m) for m in batch)))


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP-date forms are ignored: providers send seconds)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
