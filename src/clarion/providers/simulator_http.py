"""The simulator provider over HTTP: the client side of `clarion simulator`.

One pooled aiohttp session per provider. A submitted batch is cut into chunks of
`batch_size` messages, each POSTed as one JSON array to the simulator's batch endpoint
(`POST /messages`), with at most `concurrency` requests in flight. The answer maps to
outcomes per message:

- 200 with per-message results: accepted (with `sim-<id>`), refused, no capability;
- 429: THROTTLED for the whole chunk (with `Retry-After` when given);
- 5xx, a timeout, a dropped connection: RETRY (the simulator deduplicates by our id, so a
  chunk it did accept before the answer was lost is not sent twice);
- any other 4xx: REFUSED (the request itself is wrong; retrying cannot help).

Receipts do not come back through this object: the simulator POSTs them to Clarion's
`/webhooks/simulator`, at `callback_url` (sent as `X-Receipt-Url`) unless the simulator was
started with its own `--receipt-url`.
"""

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from clarion.providers.base import (
    Capabilities,
    OutboundMessage,
    Outcome,
    ReceiptSink,
    SubmitResult,
)
from clarion.providers.http import retry_after

_OUTCOMES = {
    "accepted": Outcome.ACCEPTED,
    "refused": Outcome.REFUSED,
    "no_capability": Outcome.NO_CAPABILITY,
}


def message_json(message: OutboundMessage) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(message.id), "channel": message.channel, "to": message.to}
    if message.sender is not None:
        body["from"] = message.sender
    if message.text is not None:
        body["text"] = message.text
    if message.template is not None:
        body["template"] = dataclasses.asdict(message.template)
    if message.rich_card is not None:
        body["richCard"] = message.rich_card
    if message.suggestions is not None:
        body["suggestions"] = message.suggestions
    return body


class HttpSimulatorProvider:
    """Implements `clarion.providers.base.Provider` against a `clarion simulator` server."""

    def __init__(
        self,
        channel: str,
        url: str,
        *,
        name: str = "simulator",
        timeout: float = 10.0,
        batch_size: int = 500,
        concurrency: int = 8,
        callback_url: str | None = None,
    ) -> None:
        self.name = name
        self.channel = channel
        self.url = url.rstrip("/")
        self.capabilities = Capabilities(
            idempotent_submit=True, rcs_capability_check=True, max_batch=batch_size * concurrency
        )
        self.timeout = timeout
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.callback_url = callback_url
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(concurrency)

    async def start(self, sink: ReceiptSink) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            headers = {"Content-Type": "application/json"}
            if self.callback_url:
                headers["X-Receipt-Url"] = self.callback_url
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        chunks = [batch[i : i + self.batch_size] for i in range(0, len(batch), self.batch_size)]
        if len(chunks) == 1:
            return await self._submit_chunk(chunks[0])
        answers = await asyncio.gather(*(self._submit_chunk(chunk) for chunk in chunks))
        return [result for answer in answers for result in answer]

    async def _submit_chunk(self, chunk: Sequence[OutboundMessage]) -> list[SubmitResult]:
        session = self._session
        if session is None:
            return self._all(chunk, Outcome.RETRY, "SIM_NOT_STARTED", "provider not started")
        body = orjson.dumps([message_json(m) for m in chunk])
        try:
            async with self._slots, session.post(f"{self.url}/messages", data=body) as response:
                status = response.status
                payload = await response.read()
                after = retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            return self._all(chunk, Outcome.RETRY, "SIM_TIMEOUT", "the simulator did not answer")
        except (aiohttp.ClientError, OSError) as exc:
            return self._all(chunk, Outcome.RETRY, "SIM_CONNECTION", str(exc) or type(exc).__name__)
        if status == 200:
            return self._results(chunk, payload)
        detail = payload[:200].decode("utf-8", "replace")
        if status == 429:
            return self._all(chunk, Outcome.THROTTLED, "HTTP_429", detail, after)
        if status >= 500:
            return self._all(chunk, Outcome.RETRY, f"HTTP_{status}", detail, after)
        return self._all(chunk, Outcome.REFUSED, f"HTTP_{status}", detail)

    def _results(self, chunk: Sequence[OutboundMessage], payload: bytes) -> list[SubmitResult]:
        try:
            items = orjson.loads(payload)["results"]
            by_id = {str(item["id"]): item for item in items}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._all(chunk, Outcome.RETRY, "SIM_BAD_ANSWER", "unreadable answer")
        results = []
        for message in chunk:
            item = by_id.get(str(message.id))
            outcome = _OUTCOMES.get(item.get("status", "")) if item else None
            if item is None or outcome is None:
                results.append(
                    SubmitResult(message.id, Outcome.RETRY, None, "SIM_BAD_ANSWER", "no result")
                )
                continue
            results.append(
                SubmitResult(
                    message.id,
                    outcome,
                    item.get("providerMessageId"),
                    item.get("errorCode"),
                    item.get("errorMessage"),
                )
            )
        return results

    @staticmethod
    def _all(
        chunk: Sequence[OutboundMessage],
        outcome: Outcome,
        code: str,
        text: str,
        retry_after: float | None = None,
    ) -> list[SubmitResult]:
        return [SubmitResult(m.id, outcome, None, code, text, retry_after) for m in chunk]

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        """Asks the simulator; if it cannot answer, every phone is assumed capable (an RCS
        submit to an incapable phone still answers NO_CAPABILITY, so nothing is lost)."""
        if self.channel != "rcs" or not phones:
            return dict.fromkeys(phones, True)
        session = self._session
        if session is not None:
            try:
                async with session.post(
                    f"{self.url}/capabilities", data=orjson.dumps({"phones": list(phones)})
                ) as response:
                    if response.status == 200:
                        answer = orjson.loads(await response.read())["capabilities"]
                        return {p: bool(answer.get(p, True)) for p in phones}
            except (TimeoutError, aiohttp.ClientError, OSError, KeyError, ValueError):
                pass
        return dict.fromkeys(phones, True)
