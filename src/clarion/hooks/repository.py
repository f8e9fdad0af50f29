"""Every query of the hooks domain: hooks of an account, their deliveries, and the delivering
worker's claims (hooks leased with SKIP LOCKED on PostgreSQL; SQLite has one claimer)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clarion.db.dialect import is_sqlite
from clarion.db.params import id_in
from clarion.hooks.models import Hook, HookDelivery, HookEvent

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


# --- the API's reads and writes -------------------------------------------------------------


async def hook_of_account(
    session: AsyncSession, account_id: int, hook_id: int, *, for_update: bool = False
) -> Hook | None:
    stmt = select(Hook).where(Hook.id == hook_id, Hook.account_id == account_id)
    if for_update and not is_sqlite(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def hooks_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[Hook], int]:
    rows = await session.execute(
        select(Hook)
        .where(Hook.account_id == account_id)
        .order_by(Hook.id)
        .limit(limit)
        .offset(offset)
    )
    total = await session.execute(select(func.count()).where(Hook.account_id == account_id))
    return list(rows.scalars()), int(total.scalar_one())


async def delete_hook(session: AsyncSession, hook: Hook) -> None:
    """The hook with its deliveries and undelivered events (explicitly: SQLite may run
    without foreign key enforcement)."""
    await session.execute(delete(HookEvent).where(HookEvent.hook_id == hook.id))
    await session.execute(delete(HookDelivery).where(HookDelivery.hook_id == hook.id))
    await session.delete(hook)


async def deliveries_page(
    session: AsyncSession, hook_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[HookDelivery], int]:
    """The hook's deliveries, newest first."""
    where: list[Any] = [HookDelivery.hook_id == hook_id]
    if status:
        where.append(HookDelivery.status == status)
    rows = await session.execute(
        select(HookDelivery)
        .where(*where)
        .order_by(HookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.execute(select(func.count()).where(*where))
    return list(rows.scalars()), int(total.scalar_one())


async def delivery_of_hook(
    session: AsyncSession, hook_id: int, delivery_id: int
) -> HookDelivery | None:
    stmt = select(HookDelivery).where(
        HookDelivery.id == delivery_id, HookDelivery.hook_id == hook_id
    )
    if not is_sqlite(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


# --- the delivering worker ------------------------------------------------------------------


@dataclass(slots=True)
class Claimed:
    id: int
    url: str
    secret: str
    failing: bool


def _has_work(now: datetime) -> Any:
    """The hook's oldest pending delivery is due, or none is pending and events wait."""
    pending = HookDelivery.hook_id == Hook.id, HookDelivery.status == PENDING
    other = aliased(HookDelivery)
    oldest = (
        select(func.min(other.id))
        .where(other.hook_id == Hook.id, other.status == PENDING)
        .correlate(Hook)
        .scalar_subquery()
    )
    return exists().where(HookDelivery.id == oldest, HookDelivery.next_attempt_at <= now) | (
        ~exists().where(*pending)
        & exists().where(HookEvent.hook_id == Hook.id, HookEvent.delivery_id.is_(None))
    )


async def any_enabled(session: AsyncSession) -> bool:
    """Whether any account has an enabled hook (nothing to deliver otherwise)."""
    found = await session.execute(select(exists().where(Hook.enabled.is_(True))))
    return bool(found.scalar())


async def claim_hooks(
    session: AsyncSession, owner: str, n: int, now: datetime, lease_until: datetime
) -> list[Claimed]:
    """Lease up to `n` enabled hooks that have something to send now (a due retry, or new
    events and no delivery pending) and that no live lease holds."""
    due = (
        select(Hook.id)
        .where(
            Hook.enabled.is_(True),
            Hook.lease_until.is_(None) | (Hook.lease_until < now),
            _has_work(now),
        )
        .order_by(Hook.id)
        .limit(n)
    )
    picked = due.cte("due")
    if not is_sqlite(session):
        picked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
    rows = await session.execute(
        update(Hook)
        .where(Hook.id.in_(select(picked.c.id)))
        .values(lease_owner=owner, lease_until=lease_until)
        .returning(Hook.id, Hook.url, Hook.secret, Hook.failing_since.is_not(None))
        .execution_options(synchronize_session=False)
    )
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


async def renew_lease(
    session: AsyncSession, hook_id: int, owner: str, lease_until: datetime
) -> bool:
    """False when the lease was lost (expired and taken, or the hook disabled or deleted)."""
    rows = await session.execute(
        update(Hook)
        .where(Hook.id == hook_id, Hook.lease_owner == owner, Hook.enabled.is_(True))
        .values(lease_until=lease_until)
        .returning(Hook.id)
        .execution_options(synchronize_session=False)
    )
    return rows.scalar_one_or_none() is not None


async def release_leases(session: AsyncSession, owner: str, ids: Sequence[int] | None) -> None:
    stmt = update(Hook).where(Hook.lease_owner == owner)
    if ids is not None:
        stmt = stmt.where(Hook.id.in_(ids))
    await session.execute(
        stmt.values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False)
    )


async def oldest_pending(
    session: AsyncSession, hook_id: int, *, besides: int | None = None
) -> tuple[int, datetime] | None:
    """The hook's oldest pending delivery (id, next attempt) other than `besides` (the one
    in flight): it goes before anything newer."""
    stmt = select(HookDelivery.id, HookDelivery.next_attempt_at).where(
        HookDelivery.hook_id == hook_id, HookDelivery.status == PENDING
    )
    if besides is not None:
        stmt = stmt.where(HookDelivery.id != besides)
    row = await session.execute(stmt.order_by(HookDelivery.id).limit(1))
    found = row.first()
    return (int(found[0]), found[1]) if found else None


async def cut_delivery(
    session: AsyncSession, hook_id: int, n: int, now: datetime
) -> tuple[int, list[Any]] | None:
    """Put the hook's oldest undelivered outbox rows, up to `n` events (but always one row:
    rows are never split), into a new pending delivery: its id and the rows (id, events as
    JSON text); None when there are none. The caller holds the hook's lease, so no one else
    cuts. Rows are marked by id, never by range: one committed late with a smaller id simply
    goes in the next batch."""
    if not is_sqlite(session):
        # The outbox fills faster than statistics follow: without them PostgreSQL guesses a
        # couple of rows, reads every undelivered row by bitmap and sorts them (140 ms at
        # 40,000, growing with the backlog) instead of reading the partial index's first
        # ones in order (0.5 ms). Local to this transaction.
        await session.execute(text("SELECT set_config('enable_bitmapscan', 'off', true)"))
    heads = (
        await session.execute(
            select(HookEvent.id, HookEvent.event_count)
            .where(HookEvent.hook_id == hook_id, HookEvent.delivery_id.is_(None))
            .order_by(HookEvent.id)
            .limit(n)
        )
    ).all()
    picked: list[int] = []
    events = 0
    for row_id, count in heads:
        if picked and events + count > n:
            break
        picked.append(int(row_id))
        events += count
    if not picked:
        return None
    delivery_id = (
        await session.execute(
            insert(HookDelivery)
            .values(
                hook_id=hook_id,
                status=PENDING,
                events=events,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            .returning(HookDelivery.id)
        )
    ).scalar_one()
    rows = await session.execute(
        update(HookEvent)
        .where(id_in(session, HookEvent.id, picked))
        .values(delivery_id=delivery_id)
        .returning(HookEvent.id, HookEvent.events)
        .execution_options(synchronize_session=False)
    )
    return int(delivery_id), sorted(rows.all())


async def mark_succeeded(
    session: AsyncSession, delivery_id: int, status_code: int, now: datetime
) -> bool:
    """The attempt succeeded (guarded: False when the delivery is no longer pending)."""
    rows = await session.execute(
        update(HookDelivery)
        .where(HookDelivery.id == delivery_id, HookDelivery.status == PENDING)
        .values(
            status=SUCCEEDED,
            attempts=HookDelivery.attempts + 1,
            last_status_code=status_code,
            last_error=None,
            window_started_at=func.coalesce(HookDelivery.window_started_at, now),
            updated_at=now,
        )
        .returning(HookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return rows.scalar_one_or_none() is not None


async def events_of(session: AsyncSession, delivery_id: int) -> list[Any]:
    """(id, events as JSON text) of the delivery's outbox rows, in order of occurrence."""
    rows = await session.execute(
        select(HookEvent.id, HookEvent.events)
        .where(HookEvent.delivery_id == delivery_id)
        .order_by(HookEvent.id)
    )
    return list(rows.all())


async def delivery_for_attempt(session: AsyncSession, delivery_id: int) -> HookDelivery | None:
    stmt = select(HookDelivery).where(
        HookDelivery.id == delivery_id, HookDelivery.status == PENDING
    )
    if not is_sqlite(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def hook_succeeded(session: AsyncSession, hook_id: int) -> None:
    await session.execute(
        update(Hook)
        .where(Hook.id == hook_id, Hook.failing_since.is_not(None))
        .values(failing_since=None)
        .execution_options(synchronize_session=False)
    )


async def hook_failed(session: AsyncSession, hook_id: int, now: datetime) -> None:
    await session.execute(
        update(Hook)
        .where(Hook.id == hook_id, Hook.failing_since.is_(None))
        .values(failing_since=now)
        .execution_options(synchronize_session=False)
    )


async def disable_failing(session: AsyncSession, now: datetime, after: timedelta) -> list[int]:
    """Disable the enabled hooks whose every attempt has failed for `after`; their ids."""
    rows = await session.execute(
        update(Hook)
        .where(Hook.enabled.is_(True), Hook.failing_since <= now - after)
        .values(enabled=False, lease_owner=None, lease_until=None, updated_at=now)
        .returning(Hook.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(int(i) for i in rows.scalars())


# --- retention (operations/retention.py deletes old finished deliveries with their events) --


@dataclass(slots=True)
class PurgedDeliveries:
    deliveries: int
    events: int
    more: bool  # the batch was full: older finished deliveries may be left


async def delete_finished_deliveries(
    session: AsyncSession, cutoff: datetime, n: int
) -> PurgedDeliveries:
    """Delete the oldest deliveries that are finished (succeeded or failed) and untouched
    since before `cutoff`, with their events: at most `n` rows, a delivery counting as one
    plus its events (but always one delivery, so a batch of up to 500 events goes whole).
    A pending delivery, its events and the events not yet batched are never touched; a
    failed delivery retried meanwhile is pending again and stays (the DELETE repeats the
    guard, which PostgreSQL re-checks on a row changed under it)."""
    old = (
        HookDelivery.created_at < cutoff,  # ix_hook_delivery_created; created <= updated
        HookDelivery.updated_at < cutoff,
        HookDelivery.status.in_((SUCCEEDED, FAILED)),
    )
    stmt = (
        select(HookDelivery.id, HookDelivery.events)
        .where(*old)
        .order_by(HookDelivery.created_at)
        .limit(n)
    )
    if not is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True)  # another worker's batch is its own
    found = (await session.execute(stmt)).all()
    picked: list[int] = []
    rows = 0
    for delivery_id, events in found:
        if picked and rows + 1 + events > n:
            break
        picked.append(int(delivery_id))
        rows += 1 + events
    if not picked:
        return PurgedDeliveries(0, 0, more=False)
    deleted = list(
        (
            await session.execute(
                delete(HookDelivery)
                .where(id_in(session, HookDelivery.id, picked), *old)
                .returning(HookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    events = 0
    if deleted:
        result = await session.execute(
            delete(HookEvent)
            .where(id_in(session, HookEvent.delivery_id, deleted))
            .execution_options(synchronize_session=False)
        )
        events = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return PurgedDeliveries(len(deleted), events, more=len(found) == n or len(picked) < len(found))
