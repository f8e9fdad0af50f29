"""What the HTTP providers share: one pooled aiohttp session per provider, bounded
concurrency, and the mapping of transport failures to RETRY."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from clarion.providers.base import OutboundMessage, Outcome, ReceiptSink, SubmitResult

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


class PooledHttpProvider:
    """What every HTTP provider shares: one pooled session opened at start (or at first use),
    `concurrency` requests in flight across all submit calls, receipts by webhook (the sink is
    not needed), and submit() as `_send()` per message through `submit_all`."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._limit = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = new_session(connections=self.concurrency)
        return self._session

    async def start(self, sink: ReceiptSink) -> None:
        self._session = new_session(connections=self.concurrency)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(phones, True)

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        return await submit_all(batch, self._send, self._limit, self.concurrency)

    async def _send(self, message: OutboundMessage) -> SubmitResult:
        raise NotImplementedError
