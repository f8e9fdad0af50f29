"""Retention (`CLARION_RETENTION_DAYS`): the per-recipient rows of campaigns finished longer
ago than that are deleted; the campaign row, with its counters, cost and stats, stays. So
are the hooks' finished deliveries (and their events) untouched for that long: a delivery
carries events of many campaigns, or of none, so it goes by its age, not by a campaign.

Bounded batches, not partitions: each batch is one short write transaction that deletes at
most `batch` messages of one campaign and what hangs on them, then rests (on SQLite, whose
one writer the dispatcher needs too, batches are sized to a time budget and rest as long as
they took: see below; docs/integration.md has the figures). The
rows to delete are spread over campaigns and time, and partitioning the message table would
change every queue and receipt query; batches need nothing but ordinary indexes (one was
added for them: the hook deliveries' `created_at`).

Every table whose rows go with a finished campaign's messages is listed here, in `PER_MESSAGE`
or `PER_CAMPAIGN`, by name (so a domain adds its table without this package importing it),
except the tracked links and their clicks: their counters are the campaign's click stats, so
the links domain deletes them and answers what they counted, which goes onto the campaign row
in the same transaction (`campaign.purged_clicks`, `purged_unique_clicks`). Hook deliveries
too are deleted by their domain's query (`hooks.repository.delete_finished_deliveries`),
which knows which of them are still to be sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from clarion import logs, metrics
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.db.transactions import in_transaction
from clarion.hooks import repository as hooks_repo
from clarion.links import repository as links_repo
from clarion.operations import repository as repo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PerMessage:
    """A table whose rows belong to one message, found by `message_id` (the table needs an
    index on it), or by `provider_message_id` (with `provider`, for raw receipts: indexed
    already, and receipts that never matched a message are found too)."""

    table: str
    by: Literal["message_id", "provider_message_id"] = "message_id"


@dataclass(frozen=True, slots=True)
class PerCampaign:
    """A table whose rows belong to a campaign (`id` and an indexed `campaign_id` column)."""

    table: str


# Deleted before the messages they hang on; add a table here when its domain adds it.
PER_MESSAGE: tuple[PerMessage, ...] = (PerMessage("receipt_event", by="provider_message_id"),)
PER_CAMPAIGN: tuple[PerCampaign, ...] = ()

# SQLite has one writer: there a batch's transaction aims at TARGET_SECONDS (the next batch
# takes as many messages as fit, between MIN_BATCH and the configured batch, since rows per
# second vary with load), and retention then rests as long as the batch took, so it never
# holds more than about half of the writer's time. PostgreSQL's deletes lock only the rows
# they delete, which no sender touches: there batches keep the configured size (short
# transactions all the same) with a short rest. Figures in docs/integration.md.
TARGET_SECONDS = 0.05
MIN_BATCH = 100
BATCH_PAUSE = 0.01  # the least rest between batches


@dataclass(slots=True)
class Purged:
    """What one call deleted, by table; the campaigns it finished with."""

    rows: dict[str, int] = field(default_factory=dict)
    campaigns: list[int] = field(default_factory=list)
    batches: int = 0  # the campaigns' batches
    hook_batches: int = 0  # the hook deliveries' batches

    def add(self, table: str, n: int) -> None:
        if n:
            self.rows[table] = self.rows.get(table, 0) + n


class _Pace:
    """Batch sizes and rests between batches (see TARGET_SECONDS)."""

    def __init__(self, db: Database, batch: int, pause: float) -> None:
        self.budgeted = db.is_sqlite
        self.batch = batch
        self.pause = pause
        self.size = min(batch, max(MIN_BATCH, batch // 5)) if self.budgeted else batch

    async def rest(self, took: float) -> None:
        """After a batch that took `took` seconds: size the next one, and rest."""
        if self.budgeted:
            fit = int(self.size * TARGET_SECONDS / took) if took > 0 else self.batch
            self.size = min(self.batch, max(MIN_BATCH, fit))  # never above the configured batch
            await asyncio.sleep(max(self.pause, took) if self.pause else 0)
        else:
            await asyncio.sleep(self.pause)


def _count(done: Purged, rows: dict[str, int]) -> None:
    for table, n in rows.items():
        done.add(table, n)
        if n:
            metrics.retention_deleted_total.labels(table).inc(n)


async def _purge_batch(
    session: AsyncSession, campaign_id: int, batch: int, now: datetime, done: Purged
) -> bool | None:
    """Delete one batch of the campaign's rows; True when nothing is left (campaign marked),
    None when it is not ours to purge (purged meanwhile, or another process is at it)."""
    if not await repo.lock_campaign_to_purge(session, campaign_id):
        done.rows.clear()
        return None
    deleted: dict[str, int] = {}
    keys = await repo.messages_of(session, campaign_id, batch)
    left = len(keys) == batch
    if keys:
        ids = [k.id for k in keys]
        # Clicks first (each hangs on a link), at most `batch` of them: a link clicked
        # without end (a message forwarded, a bot) must not make one transaction unbounded.
        # While clicks remain, the links and messages wait for the next batch.
        deleted["click"] = await links_repo.delete_clicks_of(session, campaign_id, ids, batch)
        if deleted["click"] == batch:
            left = True
        else:
            # A message's links all go in one batch, so the recipients who clicked add up.
            links = await links_repo.delete_links_of(session, campaign_id, ids)
            deleted["link"] = links.links
            await repo.add_purged_clicks(session, campaign_id, links.clicks, links.clicked_messages)
            for entry in PER_MESSAGE:
                if entry.by == "message_id":
                    n = await repo.delete_by_message_id(session, entry.table, ids)
                else:
                    n = await repo.delete_by_provider_id(session, entry.table, keys)
                deleted[entry.table] = n
            deleted["message"] = await repo.delete_messages(session, ids)
    for per_campaign in PER_CAMPAIGN:
        n = await repo.delete_by_campaign_id(session, per_campaign.table, campaign_id, batch)
        deleted[per_campaign.table] = n
        left = left or n == batch
    if not left:
        await repo.mark_purged(session, campaign_id, now)
    # Counted by the caller once committed (a retried transaction would count twice here).
    done.rows.clear()
    done.rows.update(deleted)
    return not left


async def purge_campaign(
    db: Database, campaign_id: int, *, batch: int, now: datetime, pause: float = BATCH_PAUSE
) -> Purged:
    """Delete every per-recipient row of one finished campaign, a batch per transaction."""
    total = Purged()
    pace = _Pace(db, batch, pause)
    with logs.context(campaign_id=campaign_id):
        while True:
            this = Purged()

            async def work(
                session: AsyncSession, this: Purged = this, n: int = pace.size
            ) -> bool | None:
                return await _purge_batch(session, campaign_id, n, now, this)

            started = time.perf_counter()
            finished = await in_transaction(db, work)
            took = time.perf_counter() - started
            total.batches += 1
            _count(total, this.rows)
            if finished is None:
                return total
            if finished:
                total.campaigns.append(campaign_id)
                log.info("retention: campaign %d purged (%s)", campaign_id, total.rows)
                return total
            await pace.rest(took)


async def purge_hook_deliveries(
    db: Database, cutoff: datetime, *, batch: int, pause: float = BATCH_PAUSE
) -> Purged:
    """Delete the hooks' deliveries finished (succeeded or failed) and untouched since before
    `cutoff`, with their events, a batch of at most `batch` rows per transaction (one
    delivery with its up to 500 events at least), paced as the campaigns' batches are.
    Pending deliveries and the events not yet batched stay whatever their age."""
    total = Purged()
    pace = _Pace(db, batch, pause)
    while True:

        async def work(session: AsyncSession, n: int = pace.size) -> hooks_repo.PurgedDeliveries:
            return await hooks_repo.delete_finished_deliveries(session, cutoff, n)

        started = time.perf_counter()
        done = await in_transaction(db, work)
        took = time.perf_counter() - started
        total.hook_batches += 1
        _count(total, {"hook_delivery": done.deliveries, "hook_event": done.events})
        if not done.more:
            if total.rows:
                log.info("retention: hook deliveries purged (%s)", total.rows)
            return total
        await pace.rest(took)


async def purge_expired(
    db: Database,
    days: float,
    *,
    batch: int = 5_000,
    now: datetime | None = None,
    campaigns: int = 10,
    pause: float = BATCH_PAUSE,
    clock: Callable[[], datetime] = utcnow,
) -> Purged:
    """One retention round: purge up to `campaigns` campaigns finished more than `days`
    ago, oldest first, then every hook delivery finished more than `days` ago."""
    now = now or clock()
    cutoff = now - timedelta(days=days)
    async with db.session(write=False) as session:
        due = await repo.campaigns_to_purge(session, cutoff, campaigns)
    total = Purged()
    for campaign_id in due:
        done = await purge_campaign(db, campaign_id, batch=batch, now=now, pause=pause)
        total.batches += done.batches
        total.campaigns += done.campaigns
        for table, n in done.rows.items():
            total.add(table, n)
    hooks = await purge_hook_deliveries(db, cutoff, batch=batch, pause=pause)
    total.hook_batches = hooks.hook_batches
    for table, n in hooks.rows.items():
        total.add(table, n)
    return total
