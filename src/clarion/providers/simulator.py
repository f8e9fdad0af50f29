"""The built-in simulator provider, in process (the default provider of every channel).

It accepts each message (after an optional tiny latency), answers the provider id
`sim-<our message id>`, and after `receipt_delay` seconds pushes a `delivered` receipt (and
for WhatsApp/RCS, one more delay later, `read`) into the receipt sink, the same path real
providers' receipts take. Submits are deduplicated by our message id, as a provider with
client-side idempotency does: a second submit of the same id answers the same provider id,
schedules no new receipts and is counted as a duplicate.

Magic numbers, on the national number (the digits after the country code), as a carrier's
test numbers: ending `0000` is refused at submit (`SIM_REFUSED`, permanent), `0001` is
accepted then reported `failed` (`SIM_UNDELIVERABLE`), `0002` cannot take RCS
(`check_capability` answers False and an RCS submit answers NO_CAPABILITY). The last four
digits of an E.164 number are always the last four of its national number.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from clarion.db.base import utcnow
from clarion.providers.base import (
    Capabilities,
    InboundMessage,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptSink,
    SubmitResult,
)

log = logging.getLogger(__name__)

REFUSED_SUFFIX = "0000"
UNDELIVERABLE_SUFFIX = "0001"
NO_RCS_SUFFIX = "0002"

REFUSED_CODE = "SIM_REFUSED"
UNDELIVERABLE_CODE = "SIM_UNDELIVERABLE"
NO_RCS_CODE = "SIM_NO_RCS"
READ_CHANNELS = frozenset({"whatsapp", "rcs"})


def provider_message_id(message_id: int | str) -> str:
    """Deterministic, so a retried hand-off maps to the same provider message."""
    return f"sim-{message_id}"


def can_take_rcs(phone: str) -> bool:
    return not phone.endswith(NO_RCS_SUFFIX)


def submit_refusal(channel: str, phone: str) -> tuple[Outcome, str, str] | None:
    """The outcome for a number the simulator will not accept, or None when it accepts."""
    if phone.endswith(REFUSED_SUFFIX):
        return Outcome.REFUSED, REFUSED_CODE, "The simulator refuses numbers ending in 0000."
    if channel == "rcs" and not can_take_rcs(phone):
        return Outcome.NO_CAPABILITY, NO_RCS_CODE, "This number cannot take RCS."
    return None


def receipt_statuses(channel: str, phone: str) -> list[str]:
    """The receipts an accepted message gets, in order."""
    if phone.endswith(UNDELIVERABLE_SUFFIX):
        return ["failed"]
    return ["delivered", "read"] if channel in READ_CHANNELS else ["delivered"]


class SimulatorProvider:
    """Implements `clarion.providers.base.Provider` for one channel, in process."""

    def __init__(
        self,
        channel: str,
        *,
        receipt_delay: float = 1.0,
        name: str = "simulator",
        latency: float = 0.0,
        push_attempts: int = 5,
    ) -> None:
        self.name = name
        self.channel = channel
        self.capabilities = Capabilities(
            idempotent_submit=True, rcs_capability_check=True, max_batch=1000
        )
        self.receipt_delay = receipt_delay
        self.latency = latency
        self.push_attempts = push_attempts
        self._sink: ReceiptSink | None = None
        self._accepted: dict[int, str] = {}  # our message id -> provider message id
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts: Counter[str] = Counter()

    async def start(self, sink: ReceiptSink) -> None:
        self._sink = sink

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        if self.latency:
            await asyncio.sleep(self.latency)
        results: list[SubmitResult] = []
        due: list[tuple[str, str, str]] = []  # (provider id, channel, phone)
        for message in batch:
            self.counts["submits"] += 1
            known = self._accepted.get(message.id)
            if known is not None:
                self.counts["duplicates"] += 1
                results.append(SubmitResult(message.id, Outcome.ACCEPTED, known))
                continue
            refusal = submit_refusal(message.channel, message.to)
            if refusal is not None:
                outcome, code, text = refusal
                self.counts[outcome.value] += 1
                results.append(SubmitResult(message.id, outcome, None, code, text))
                continue
            pmid = provider_message_id(message.id)
            self._accepted[message.id] = pmid
            self.counts["accepted"] += 1
            results.append(SubmitResult(message.id, Outcome.ACCEPTED, pmid))
            due.append((pmid, message.channel, message.to))
        if due and self._sink is not None:
            self._spawn(self._report(due))
        return results

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        if self.channel != "rcs":
            return dict.fromkeys(phones, True)
        return {phone: can_take_rcs(phone) for phone in phones}

    async def inject_inbound(self, from_phone: str, text: str) -> None:
        """Pretend a recipient replied (e.g. STOP): pushed to the sink's inbound path."""
        if self._sink is not None:
            item = InboundMessage(self.name, self.channel, from_phone, text, None, utcnow())
            await self._sink.inbound([item])

    def stats(self) -> dict[str, Any]:
        """Unique accepted ids, duplicate submits, refusals and receipts pushed by status."""
        return {"acceptedIds": len(self._accepted), **self.counts}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, due: list[tuple[str, str, str]]) -> None:
        """Push each stage of receipts (delivered/failed, then read) one delay apart."""
        stages: list[list[tuple[str, str]]] = []
        for pmid, channel, phone in due:
            for index, status in enumerate(receipt_statuses(channel, phone)):
                if len(stages) <= index:
                    stages.append([])
                stages[index].append((pmid, status))
        for stage in stages:
            await asyncio.sleep(self.receipt_delay)
            now = utcnow()
            receipts = [
                Receipt(
                    self.name,
                    pmid,
                    status,
                    UNDELIVERABLE_CODE if status == "failed" else None,
                    "The simulator reports this number undeliverable."
                    if status == "failed"
                    else None,
                    now,
                )
                for pmid, status in stage
            ]
            await self._push(receipts)

    async def _push(self, receipts: list[Receipt]) -> None:
        assert self._sink is not None
        for attempt in range(self.push_attempts):
            try:
                await self._sink.receipts(receipts)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("receipt push failed (attempt %d)", attempt + 1, exc_info=True)
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
            else:
                for r in receipts:
                    self.counts[f"receipts.{r.status}"] += 1
                return
        log.error("dropped %d simulator receipts after %d attempts", len(receipts), attempt + 1)
