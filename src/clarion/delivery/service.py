"""Receipt ingestion: one path for every provider.

Each receipt is stored as a raw `receipt_event`, then applied to its message through the
monotonic status machine (`states.py`). Receipts arrive in any order and more than once: a
duplicate or late receipt is stored and changes nothing. A receipt whose message is not
recorded as sent yet (the provider answered before our submit transaction committed) is
parked (`receipt_event.message_id IS NULL`) and applied by `apply_parked`, the one way of
applying parked receipts: the dispatcher calls it for the ids it records as sent, in the same
transaction, and the scheduler's `sweep_parked` calls it every round for receipts that parked
while that transaction was committing.

Campaign counters move once per campaign per call, by the net change, in the caller's
transaction (`messages.transitions.apply_receipts`). Test sends (`contact_id IS NULL`) are
not counted in a campaign's partition.
"""

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession

from clarion import metrics
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.delivery import aliases, refunds, repository
from clarion.delivery import inbound as inbound_handlers
from clarion.messages import tally, transitions
from clarion.messages.states import RECEIPT_STATUSES, RECEIPT_TARGETS, next_status
from clarion.messages.transitions import MessageState
from clarion.providers.base import InboundMessage, Receipt

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    received: int = 0  # receipts given
    applied: int = 0  # receipts that moved a message's status
    unchanged: int = 0  # matched, but nothing to change (duplicate, late, out of order)
    parked: int = 0  # no message recorded as sent for this provider id yet
    parked_ids: list[tuple[str, str]] = field(default_factory=list)  # (provider, id) parked
    # (provider, applied | unchanged | parked) -> receipts: what `count` exports
    by_provider: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __iadd__(self, other: "IngestResult") -> "IngestResult":
        self.received += other.received
        self.applied += other.applied
        self.unchanged += other.unchanged
        self.parked += other.parked
        self.parked_ids.extend(other.parked_ids)
        self.by_provider.update(other.by_provider)
        return self

    def count(self) -> None:
        """Add these receipts to `clarion_receipts_total` (call once they are committed)."""
        for (provider, result), n in self.by_provider.items():
            metrics.receipts_total.labels(provider, result).inc(n)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(slots=True)
class _Change:
    """The accumulated effect of one call's receipts on one message."""

    message: MessageState
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    refund: bool = False  # failed, and not billed by the provider


@dataclass
class _Plan:
    now: datetime
    changes: dict[int, _Change] = field(default_factory=dict)

    def apply(
        self,
        message: MessageState,
        status: str,
        occurred_at: datetime | None,
        error_code: str | None,
        error_message: str | None,
        refund: bool = False,
    ) -> bool:
        """Fold one receipt into the message's pending change; True if it moved it."""
        new = next_status(message.status, status)
        if new is None:
            return False
        message.status = new
        change = self.changes.get(message.id)
        if change is None:
            change = self.changes[message.id] = _Change(message)
        at = _aware(occurred_at) or self.now
        if new == "delivered":
            change.delivered_at = change.delivered_at or at
        elif new == "read":
            change.read_at = at
            change.delivered_at = change.delivered_at or at  # read implies delivered
        elif new == "failed":
            change.error_code = (error_code or "UNDELIVERABLE")[:64]
            change.error_message = error_message
            change.refund = refund
        return True

    async def write(self, session: AsyncSession) -> None:
        rows: list[dict[str, Any]] = []
        moved: dict[int, tally.Change] = defaultdict(tally.Change)
        changed: set[int] = set()
        for _, change in sorted(self.changes.items()):  # ascending ids: a fixed lock order
            m = change.message
            if m.status == m.original:
                continue
            changed.add(m.id)
            rows.append(
                {
                    "b_id": m.id,
                    "b_old": m.original,
                    "b_status": m.status,
                    "b_delivered_at": change.delivered_at,
                    "b_read_at": change.read_at,
                    "b_error_code": change.error_code,
                    "b_error_message": change.error_message,
                    "b_updated_at": self.now,
                }
            )
            if m.contact_id is not None:  # test sends are outside the campaign's partition
                moved[m.campaign_id].move(m.original, m.status)
            m.original = m.status
        if rows:
            await transitions.apply_receipts(session, rows, moved)
        not_billed = [
            c.message.id
            for c in self.changes.values()
            if c.refund and c.message.status == "failed" and c.message.id in changed
        ]
        await refunds.refund_messages(session, not_billed, self.now)


def _by_provider(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for provider, provider_message_id in pairs:
        grouped[provider].append(provider_message_id)
    return grouped


async def _load(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], MessageState]:
    found: dict[tuple[str, str], MessageState] = {}
    for provider, ids in _by_provider(pairs).items():
        for pmid, state in (
            await transitions.messages_by_provider_ids(session, provider, ids)
        ).items():
            found[(provider, pmid)] = state
    return found


async def _opt_out_stopped(
    session: AsyncSession,
    receipts: Sequence[Receipt],
    messages: dict[tuple[str, str], MessageState],
) -> None:
    """A WhatsApp message refused because the person stopped marketing messages (131050)
    opts its contact out of WhatsApp (a retried receipt changes nothing more)."""
    found = [
        (m.contact_id, r.error_message)
        for r in receipts
        if r.error_code == inbound_handlers.STOPPED_MARKETING
        and (m := messages.get((r.provider, r.provider_message_id))) is not None
        and m.contact_id is not None
    ]
    for contact_id, message in found:
        reason = f"{inbound_handlers.STOPPED_MARKETING}: {message or 'stopped marketing'}"
        await inbound_handlers.stopped_marketing(session, [contact_id], reason[:500])


async def ingest_receipts(session: AsyncSession, receipts: Sequence[Receipt]) -> IngestResult:
    """Store and apply a batch of normalized receipts in the caller's transaction."""
    result = IngestResult(received=len(receipts))
    if not receipts:
        return result
    now = utcnow()
    messages = await _load(session, ((r.provider, r.provider_message_id) for r in receipts))
    unknown = [r for r in receipts if (r.provider, r.provider_message_id) not in messages]
    if unknown and await aliases.resolve(session, unknown):  # a later part's receipt
        messages.update(
            await _load(session, ((r.provider, r.provider_message_id) for r in unknown))
        )
    await _opt_out_stopped(session, receipts, messages)
    plan = _Plan(now)
    events: list[dict[str, Any]] = []
    for r in receipts:
        message = messages.get((r.provider, r.provider_message_id))
        matched = message is not None and message.status in RECEIPT_TARGETS
        events.append(
            {
                "provider": r.provider[:32],
                "provider_message_id": r.provider_message_id[:128],
                "status": r.status[:16],
                "error_code": r.error_code[:64] if r.error_code else None,
                "error_message": r.error_message,
                "raw": r.raw,
                "occurred_at": _aware(r.occurred_at),
                "received_at": now,
                "refund": r.refund,
                "message_id": message.id if matched and message is not None else None,
            }
        )
        if not matched or message is None:
            result.parked += 1
            result.parked_ids.append((r.provider, r.provider_message_id))
            result.by_provider[(r.provider, "parked")] += 1
        elif r.status in RECEIPT_STATUSES and plan.apply(
            message, r.status, r.occurred_at, r.error_code, r.error_message, r.refund
        ):
            result.applied += 1
            result.by_provider[(r.provider, "applied")] += 1
        else:
            result.unchanged += 1
            result.by_provider[(r.provider, "unchanged")] += 1
    await repository.insert_receipt_events(session, events)
    await plan.write(session)
    # Counted once committed: a transaction rolled back (and run again) counts nothing.
    orm_event.listen(session.sync_session, "after_commit", lambda _s: result.count(), once=True)
    return result


async def apply_parked(
    session: AsyncSession, provider: str, provider_message_ids: Sequence[str]
) -> int:
    """Apply the parked receipts of these provider ids whose message is now recorded as sent
    (call it after recording submit results, in the same or a later transaction). Returns
    how many parked receipts were matched; safe to call twice (the machine is monotonic)."""
    if not provider_message_ids:
        return 0
    events = await repository.parked_events_for(session, provider, provider_message_ids)
    if not events:
        return 0
    messages = await transitions.messages_by_provider_ids(
        session, provider, [e.provider_message_id for e in events]
    )
    plan = _Plan(utcnow())
    matched: list[dict[str, int]] = []
    for event in events:
        message = messages.get(event.provider_message_id)
        if message is None or message.status not in RECEIPT_TARGETS:
            continue
        matched.append({"b_id": event.id, "b_message_id": message.id})
        if event.status in RECEIPT_STATUSES:
            plan.apply(
                message,
                event.status,
                event.occurred_at,
                event.error_code,
                event.error_message,
                event.refund,
            )
    await repository.mark_events_matched(session, matched)
    await plan.write(session)
    if matched:
        n = len(matched)
        orm_event.listen(
            session.sync_session,
            "after_commit",
            lambda _s: metrics.receipts_total.labels(provider, "unparked").inc(n),
            once=True,
        )
    return len(matched)


async def sweep_parked(
    session: AsyncSession, *, max_age: timedelta = timedelta(days=1), limit: int = 5000
) -> int:
    """Apply parked receipts whose message has since been recorded (for receipts that raced
    a submit transaction and were missed by `apply_parked`). Events older than `max_age`
    are left parked for good (a receipt for a message we never sent)."""
    pairs = await repository.applicable_parked(session, utcnow() - max_age, limit)
    applied = 0
    for provider, ids in _by_provider(pairs).items():
        applied += await apply_parked(session, provider, ids)
    return applied


async def ingest_in_transaction(
    db: Database, receipts: Sequence[Receipt], inbound: Sequence[InboundMessage] = ()
) -> IngestResult:
    """Ingest receipts (and hand inbound messages to the inbound hook) in a transaction of
    their own, run again after a transient database error (ingestion is idempotent)."""

    async def work(session: AsyncSession) -> IngestResult:
        result = await ingest_receipts(session, receipts)
        if inbound:
            await inbound_handlers.handle_inbound(session, inbound)
        return result

    return await in_transaction(db, work)


class DbReceiptSink:
    """Implements `ReceiptSink` on the database.

    Concurrent pushes are coalesced: while one transaction ingests, the receipts pushed in
    the meantime wait and go together in the next one (a burst of many small pushes becomes
    a few large set-based ingests). `receipts()` returns once its receipts are committed, and
    raises if their transaction failed (the pusher keeps them and retries).
    """

    def __init__(self, db: Database, *, max_batch: int = 5000) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[tuple[list[Receipt], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.totals = IngestResult()
        self.transactions = 0

    async def receipts(self, items: Sequence[Receipt]) -> None:
        if not items:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((list(items), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            taken: list[tuple[list[Receipt], asyncio.Future[None]]] = []
            size = 0
            while self._pending and (
                not taken or size + len(self._pending[0][0]) <= self.max_batch
            ):
                items, future = self._pending.pop(0)
                taken.append((items, future))
                size += len(items)
            batch = [r for items, _ in taken for r in items]
            try:
                self.transactions += 1
                result = await ingest_in_transaction(self.db, batch)
                result.parked_ids = []  # not kept in the running totals
                self.totals += result
            except Exception as exc:  # handed to each waiting pusher
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in taken:
                    if not future.done():
                        future.set_result(None)

    async def inbound(self, items: Sequence[InboundMessage]) -> None:
        if items:
            await ingest_in_transaction(self.db, (), items)

    async def aliases(self, provider: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Store provider ids that stand for a message's (implements `AliasSink`)."""
        if pairs:
            async with self.db.transaction() as session:
                await aliases.store(session, provider, pairs)
