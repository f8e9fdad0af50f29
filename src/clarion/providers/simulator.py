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
from collections.abc import Iterator, Sequence
from typing import Any

from clarion.db.base import utcnow
from clarion.db.transactions import pause, stop_tasks
from clarion.providers.base import (
    Capabilities,
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
CLOSE_GRACE = 5.0  # seconds a receipt push under way gets to finish when the simulator closes


class IdSet:
    """A set of non-negative integer ids in a sparse bitmap: 4 KiB per 32,768-id page, so a
    million sequential message ids take about 128 KiB instead of ~60 MB as a Python set
    (the simulator runs inside the worker when embedded and must stay small)."""

    PAGE_BITS = 15  # 32,768 ids per page

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] = {}
        self._count = 0

    def add(self, value: int) -> bool:
        """Add `value`; True if it was not there yet."""
        page_no, bit = value >> self.PAGE_BITS, value & ((1 << self.PAGE_BITS) - 1)
        page = self._pages.get(page_no)
        if page is None:
            page = self._pages[page_no] = bytearray(1 << (self.PAGE_BITS - 3))
        byte, mask = bit >> 3, 1 << (bit & 7)
        if page[byte] & mask:
            return False
        page[byte] |= mask
        self._count += 1
        return True

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int) or value < 0:
            return False
        page = self._pages.get(value >> self.PAGE_BITS)
        if page is None:
            return False
        bit = value & ((1 << self.PAGE_BITS) - 1)
        return bool(page[bit >> 3] & (1 << (bit & 7)))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for page_no in sorted(self._pages):
            page, base = self._pages[page_no], page_no << self.PAGE_BITS
            for byte_no, byte in enumerate(page):
                if byte:
                    for b in range(8):
                        if byte & (1 << b):
                            yield base + (byte_no << 3) + b


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
        self._accepted = IdSet()  # our message ids taken (the provider id derives from it)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self.counts: Counter[str] = Counter()

    async def start(self, sink: ReceiptSink) -> None:
        self._sink = sink
        self._closing.clear()

    async def close(self) -> None:
        """Receipts still waiting for their delay are dropped; a push under way finishes (see
        `stop_tasks`)."""
        self._closing.set()
        await stop_tasks(list(self._tasks), CLOSE_GRACE)
        self._tasks.clear()

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        if self.latency:
            await asyncio.sleep(self.latency)
        results: list[SubmitResult] = []
        due: list[tuple[str, str, str]] = []  # (provider id, channel, phone)
        for message in batch:
            self.counts["submits"] += 1
            if message.id in self._accepted:
                self.counts["duplicates"] += 1
                pmid = provider_message_id(message.id)
                results.append(SubmitResult(message.id, Outcome.ACCEPTED, pmid))
                continue
            refusal = submit_refusal(message.channel, message.to)
            if refusal is not None:
                outcome, code, text = refusal
                self.counts[outcome.value] += 1
                results.append(SubmitResult(message.id, outcome, None, code, text))
                continue
            pmid = provider_message_id(message.id)
            self._accepted.add(message.id)
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
            if not await pause(self._closing, self.receipt_delay):
                return
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
                if not await pause(self._closing, min(0.2 * 2**attempt, 5.0)):
                    return
            else:
                for r in receipts:
                    self.counts[f"receipts.{r.status}"] += 1
                return
        log.error("dropped %d simulator receipts after %d attempts", len(receipts), attempt + 1)
