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
    workers: int,
) -> list[SubmitResult]:
    """Send each message with bounded concurrency (`limit` is shared by every submit call of
    the provider); a transport failure is that message's RETRY, never an exception out of
    submit(). `workers` coroutines take messages in turn, rather than a task per message."""
    results: list[SubmitResult | None] = [None] * len(batch)
    queue = iter(enumerate(batch))

    async def work() -> None:
        for index, message in queue:
            async with limit:
                try:
                    results[index] = await send(message)
                except TRANSPORT_ERRORS as exc:
                    results[index] = SubmitResult(
                        message.id,
                        Outcome.RETRY,
                        error_message=f"{type(exc).__name__}: {exc or 'timeout'}",
                    )

    await asyncio.gather(*(work() for _ in range(min(workers, len(batch)))))
    return [r for r in results if r is not None]


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP-date forms are ignored: providers send seconds)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
