"""Every change of a message's status, each one named function that moves the campaign's
counters itself (`tally.py`) in the caller's transaction.

    materialize (sending/materialize.py)   -> queued
    queue_reply                            -> queued (a message of no campaign)
    claim_batch                            queued -> sending (leased)
    record_outcomes                        sending -> sent | failed | queued (retry)
    fail_unpaid                            sent -> failed (no credits to pay for it)
    release_expired_leases, release_leases_of    sending -> queued
    skip_queued                            queued -> skipped (campaign cancelled)
    hold_claimed                           sending -> queued until not_before (sending hours)
    skip_claimed                           sending -> skipped (EXPIRED, FREQUENCY_CAP,
                                           NO_CONSENT)
    expire_queued                          queued -> skipped (EXPIRED: past expiresAt)
    hold_materialized                      queued, due at not_before (outside its hours)
    apply_receipts                         sent -> delivered | read | failed (states.py)
    expire_overdue                         sent -> expired (no final receipt in time)
    take_back_charges                      price -> 0 (refunded: the provider did not bill)

Set-based throughout: one statement per claimed batch, per recorded batch, per chunk of
receipts. PostgreSQL gets `FOR UPDATE SKIP LOCKED` (any number of workers) and array
parameters; SQLite (one embedded sender, writes serialized by BEGIN IMMEDIATE) gets the same
statements without them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.db.base import UTCDateTime
from clarion.db.dialect import is_postgres, is_sqlite
from clarion.db.params import LOOKUP_CHUNK, as_arrays, chunks, one_of
from clarion.db.plans import without_nested_loops
from clarion.messages import events, tally
from clarion.messages.models import Message, MessageStatus

_UTC = UTCDateTime()


@dataclass(slots=True)
class Claimed:
    id: int
    campaign_id: int | None  # None: a message of no campaign (a reply)
    contact_id: int | None
    phone: str
    country: str
    channel: str
    attempts: int
    variant: str | None = None  # the A/B variant whose message it gets


_CLAIM_SQLITE = """
UPDATE message SET status = 'sending', lease_owner = :owner, lease_until = :until,
                   updated_at = :now
WHERE id IN (
    SELECT id FROM message
    WHERE campaign_id = :campaign_id AND status = 'queued' AND next_attempt_at <= :now
    ORDER BY next_attempt_at
    LIMIT :n
)
RETURNING id, campaign_id, contact_id, phone, country, channel, attempts, variant
"""

# A materialized CTE: PostgreSQL may otherwise re-run a LIMIT subquery inside IN (...) and
# claim more than asked.
_CLAIM_PG = """
WITH picked AS MATERIALIZED (
    SELECT id FROM message
    WHERE campaign_id = :campaign_id AND status = 'queued' AND next_attempt_at <= :now
    ORDER BY next_attempt_at
    LIMIT :n
    FOR UPDATE SKIP LOCKED
)
UPDATE message AS m SET status = 'sending', lease_owner = :owner, lease_until = :until,
                        updated_at = :now
FROM picked WHERE m.id = picked.id
RETURNING m.id, m.campaign_id, m.contact_id, m.phone, m.country, m.channel, m.attempts,
          m.variant
"""


async def queue_reply(
    session: AsyncSession,
    *,
    account_id: int,
    phone: str,
    country: str,
    channel: str,
    sender: str | None,
    text: str,
    now: datetime,
) -> int:
    """A message of no campaign (a keyword's reply), queued for the engine. It belongs to no
    campaign's counters: no tally moves for it, now or later (`contact_id` is NULL, as for
    test sends, which every counter change leaves out)."""
    message = Message(
        campaign_id=None,
        account_id=account_id,
        contact_id=None,
        phone=phone,
        country=country,
        channel=channel,
        status=MessageStatus.QUEUED,
        units=0,
        price=0,
        attempts=0,
        next_attempt_at=now,
        text=text,
        sender=sender,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    return message.id


_CLAIM_REPLIES = """
UPDATE message SET status = 'sending', lease_owner = :owner, lease_until = :until,
                   updated_at = :now
WHERE id IN (
    SELECT id FROM message
    WHERE campaign_id IS NULL AND status = 'queued' AND next_attempt_at <= :now
    ORDER BY next_attempt_at
    LIMIT :n
)
RETURNING id, campaign_id, contact_id, phone, country, channel, attempts
"""

_CLAIM_REPLIES_PG = """
WITH picked AS MATERIALIZED (
    SELECT id FROM message
    WHERE campaign_id IS NULL AND status = 'queued' AND next_attempt_at <= :now
    ORDER BY next_attempt_at
    LIMIT :n
    FOR UPDATE SKIP LOCKED
)
UPDATE message AS m SET status = 'sending', lease_owner = :owner, lease_until = :until,
                        updated_at = :now
FROM picked WHERE m.id = picked.id
RETURNING m.id, m.campaign_id, m.contact_id, m.phone, m.country, m.channel, m.attempts
"""


async def claim_replies(
    session: AsyncSession, owner: str, n: int, now: datetime, lease_until: datetime
) -> list[Claimed]:
    """Lease up to `n` due messages of no campaign to `owner` (no counters to move)."""
    sql = _CLAIM_REPLIES_PG if is_postgres(session) else _CLAIM_REPLIES
    stmt = text(sql).bindparams(bindparam("now", type_=_UTC), bindparam("until", type_=_UTC))
    rows = await session.execute(stmt, {"owner": owner, "until": lease_until, "now": now, "n": n})
    return [Claimed(*row) for row in rows]


async def claim_batch(
    session: AsyncSession,
    owner: str,
    campaign_id: int,
    n: int,
    now: datetime,
    lease_until: datetime,
) -> list[Claimed]:
    """Lease up to `n` due queued messages of one campaign to `owner`; counters moved."""
    sql = _CLAIM_PG if is_postgres(session) else _CLAIM_SQLITE
    stmt = text(sql).bindparams(bindparam("now", type_=_UTC), bindparam("until", type_=_UTC))
    rows = await session.execute(
        stmt,
        {"owner": owner, "until": lease_until, "now": now, "campaign_id": campaign_id, "n": n},
    )
    claimed = [Claimed(*row) for row in rows]
    counted = sum(1 for c in claimed if c.contact_id is not None)
    if counted:
        await tally.move(session, campaign_id, {"queued": -counted, "sending": counted})
    return claimed


async def _requeue(session: AsyncSession, rows: Sequence[Any]) -> int:
    per_campaign: Counter[int] = Counter(cid for cid, contact_id in rows if contact_id is not None)
    for campaign_id, k in per_campaign.items():
        await tally.move(session, campaign_id, {"sending": -k, "queued": k})
    return len(rows)


async def release_expired_leases(session: AsyncSession, now: datetime) -> int:
    """Messages whose worker died (lease expired) go back to the queue."""
    rows = await session.execute(
        update(Message)
        .where(Message.status == "sending", Message.lease_until < now)
        .values(status="queued", lease_owner=None, lease_until=None, updated_at=now)
        .returning(Message.campaign_id, Message.contact_id)
    )
    return await _requeue(session, rows.all())


async def release_leases_of(session: AsyncSession, owner: str, ids: Sequence[int] | None) -> int:
    """Give back this owner's leases (on shutdown, or a batch given up on)."""
    stmt = update(Message).where(Message.status == "sending", Message.lease_owner == owner)
    if ids is not None:
        stmt = stmt.where(Message.id.in_(ids))
    rows = await session.execute(
        stmt.values(status="queued", lease_owner=None, lease_until=None).returning(
            Message.campaign_id, Message.contact_id
        )
    )
    return await _requeue(session, rows.all())


# --- recording ------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What to write for one message after its submit."""

    id: int
    status: str  # sent | failed | queued
    channel: str
    provider: str | None = None
    provider_message_id: str | None = None
    units: int = 0
    price: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class Recorded:
    id: int
    campaign_id: int | None
    account_id: int
    contact_id: int | None


_RECORD_PG = """
UPDATE message AS m SET
    status = v.status, channel = v.channel, provider = v.provider,
    provider_message_id = v.pmid, units = v.units, price = v.price, attempts = v.attempts,
    next_attempt_at = coalesce(v.next_at, m.next_attempt_at),
    error_code = v.code, error_message = v.msg,
    sent_at = CASE WHEN v.status = 'sent' THEN :now ELSE m.sent_at END,
    lease_owner = NULL, lease_until = NULL, updated_at = :now
FROM unnest(
    CAST(:ids AS BIGINT[]), CAST(:statuses AS TEXT[]), CAST(:channels AS TEXT[]),
    CAST(:providers AS TEXT[]), CAST(:pmids AS TEXT[]), CAST(:units AS INTEGER[]),
    CAST(:prices AS BIGINT[]), CAST(:attempts AS INTEGER[]), CAST(:next_ats AS TIMESTAMPTZ[]),
    CAST(:codes AS TEXT[]), CAST(:msgs AS TEXT[])
) AS v(id, status, channel, provider, pmid, units, price, attempts, next_at, code, msg)
WHERE m.id = v.id AND m.status = 'sending' AND m.lease_owner = :owner
RETURNING m.id, m.campaign_id, m.account_id, m.contact_id
"""


async def record_outcomes(
    session: AsyncSession, owner: str, outcomes: Sequence[Outcome], now: datetime
) -> list[Recorded]:
    """Write the outcomes of messages still leased to `owner` (a message whose lease was lost
    and re-claimed elsewhere is left alone). Returns the rows actually written."""
    if not outcomes:
        return []
    if is_postgres(session):
        # Planned without nested loops: once PostgreSQL switches this prepared statement to
        # a generic plan (after a few runs), it guesses 10 outcomes and, on statistics from
        # before the rows were leased, one leased row, and it then rescanned the whole
        # `unnest` for each leased row: a million comparisons a batch of 1,000, a second a
        # statement, sending four times slower (`bench/scale.py --cases accounts`). A hash
        # join stays linear whatever the guesses.
        async with without_nested_loops(session):
            rows = await session.execute(
                text(_RECORD_PG),
                {
                    "now": now,
                    "owner": owner,
                    "ids": [o.id for o in outcomes],
                    "statuses": [o.status for o in outcomes],
                    "channels": [o.channel for o in outcomes],
                    "providers": [o.provider for o in outcomes],
                    "pmids": [o.provider_message_id for o in outcomes],
                    "units": [o.units for o in outcomes],
                    "prices": [o.price for o in outcomes],
                    "attempts": [o.attempts for o in outcomes],
                    "next_ats": [o.next_attempt_at for o in outcomes],
                    "codes": [o.error_code for o in outcomes],
                    "msgs": [o.error_message for o in outcomes],
                },
            )
            recorded = [Recorded(*row) for row in rows]
        await events.record(session, [r.id for r in recorded], now)
        return recorded
    # SQLite: the write lock is ours (BEGIN IMMEDIATE), so guard with a read, then executemany.
    ids = [o.id for o in outcomes]
    held: list[Recorded] = []
    for start in range(0, len(ids), 900):
        rows = await session.execute(
            select(Message.id, Message.campaign_id, Message.account_id, Message.contact_id).where(
                Message.id.in_(ids[start : start + 900]),
                Message.status == "sending",
                Message.lease_owner == owner,
            )
        )
        held.extend(Recorded(*row) for row in rows)
    keep = {r.id for r in held}
    table = cast(Table, Message.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            channel=bindparam("b_channel"),
            provider=bindparam("b_provider"),
            provider_message_id=bindparam("b_pmid"),
            units=bindparam("b_units"),
            price=bindparam("b_price"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next_at"),
            error_code=bindparam("b_code"),
            error_message=bindparam("b_msg"),
            sent_at=bindparam("b_sent_at"),
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    params = [
        {
            "b_id": o.id,
            "b_status": o.status,
            "b_channel": o.channel,
            "b_provider": o.provider,
            "b_pmid": o.provider_message_id,
            "b_units": o.units,
            "b_price": o.price,
            "b_attempts": o.attempts,
            "b_next_at": o.next_attempt_at or now,
            "b_code": o.error_code,
            "b_msg": o.error_message,
            "b_sent_at": now if o.status == "sent" else None,
        }
        for o in outcomes
        if o.id in keep
    ]
    if params:
        conn = await session.connection()
        await conn.execute(stmt, params)
    await events.record(session, [r.id for r in held], now)
    return held


async def fail_unpaid(
    session: AsyncSession, ids: Sequence[int], now: datetime, code: str, message: str
) -> None:
    """Turn messages just recorded `sent` but that could not be paid into `failed`."""
    if ids:
        await session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                status="failed",
                price=0,
                sent_at=None,
                error_code=code,
                error_message=message,
                updated_at=now,
            )
        )
        await events.record(session, ids, now)


def group_by_campaign(rows: Sequence[Recorded]) -> dict[int | None, list[Recorded]]:
    out: dict[int | None, list[Recorded]] = defaultdict(list)
    for row in rows:
        out[row.campaign_id].append(row)
    return out


# --- campaign cancelled ----------------------------------------------------------------


async def skip_queued(session: AsyncSession, campaign_id: int) -> int:
    """Turn every still-queued message of the campaign into `skipped` (`CANCELLED`), in one
    UPDATE."""
    result = await session.execute(
        update(Message)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.SKIPPED, error_code="CANCELLED")
        .execution_options(synchronize_session=False)
    )
    skipped = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if skipped:
        await tally.move(session, campaign_id, {"queued": -skipped, "skipped": skipped})
    return skipped


NO_CONSENT = "NO_CONSENT"


def _counted(campaign_id: int | None, contact_id: int | None) -> int | None:
    """The campaign whose counters a message is part of: None for a test send (no contact)
    and for a message of no campaign."""
    return campaign_id if contact_id is not None else None


async def in_flight(session: AsyncSession, campaign_id: int) -> int:
    """Messages handed to a worker (status `sending`) and not yet recorded."""
    return int(
        (
            await session.execute(
                select(func.count()).where(
                    Message.campaign_id == campaign_id, Message.status == MessageStatus.SENDING
                )
            )
        ).scalar_one()
    )


# --- receipts ------------------------------------------------------------------------


@dataclass(slots=True)
class MessageState:
    """What a receipt needs to know about its message (mutated as receipts are folded in)."""

    id: int
    campaign_id: int
    contact_id: int | None
    provider_message_id: str
    original: str
    status: str


async def messages_by_provider_ids(
    session: AsyncSession, provider: str, provider_message_ids: Sequence[str]
) -> dict[str, MessageState]:
    """The messages these provider ids were recorded for, locked for update on PostgreSQL
    (in id order, so concurrent ingests never deadlock each other). On SQLite the write
    transaction (BEGIN IMMEDIATE) already serializes writers."""
    found: dict[str, MessageState] = {}
    lock = not is_sqlite(session)
    for part in chunks(sorted(set(provider_message_ids)), LOOKUP_CHUNK):
        stmt = (
            select(
                Message.id,
                Message.campaign_id,
                Message.contact_id,
                Message.provider_message_id,
                Message.status,
            )
            .where(one_of(session, Message.provider_message_id, part), Message.provider == provider)
            .order_by(Message.id)
        )
        if lock:
            stmt = stmt.with_for_update()
        for row in await session.execute(stmt):
            found[row.provider_message_id] = MessageState(
                row.id,
                row.campaign_id,
                row.contact_id,
                row.provider_message_id,
                row.status,
                row.status,
            )
    return found


_UPDATE_MESSAGE = (
    update(Message.__table__)  # type: ignore[arg-type]
    .where(
        and_(
            Message.__table__.c.id == bindparam("b_id"),
            Message.__table__.c.status == bindparam("b_old"),
        )
    )
    .values(
        status=bindparam("b_status"),
        delivered_at=func.coalesce(Message.__table__.c.delivered_at, bindparam("b_delivered_at")),
        read_at=func.coalesce(Message.__table__.c.read_at, bindparam("b_read_at")),
        error_code=func.coalesce(bindparam("b_error_code"), Message.__table__.c.error_code),
        error_message=func.coalesce(
            bindparam("b_error_message"), Message.__table__.c.error_message
        ),
        updated_at=bindparam("b_updated_at"),
    )
)


# PostgreSQL: one statement for a chunk, its rows bound as one array per key (`as_arrays`:
# the keys are the bind parameters of `_UPDATE_MESSAGE`). Through executemany, these rows and
# the raw events' were a quarter of the receipts webhook's time in a py-spy profile.
_UPDATE_MESSAGES_PG = """
UPDATE message AS m SET
    status = v.status,
    delivered_at = coalesce(m.delivered_at, v.delivered_at),
    read_at = coalesce(m.read_at, v.read_at),
    error_code = coalesce(v.code, m.error_code),
    error_message = coalesce(v.msg, m.error_message),
    updated_at = v.updated_at
FROM unnest(
    CAST(:b_id AS BIGINT[]), CAST(:b_old AS TEXT[]), CAST(:b_status AS TEXT[]),
    CAST(:b_delivered_at AS TIMESTAMPTZ[]), CAST(:b_read_at AS TIMESTAMPTZ[]),
    CAST(:b_error_code AS TEXT[]), CAST(:b_error_message AS TEXT[]),
    CAST(:b_updated_at AS TIMESTAMPTZ[])
) AS v(id, old, status, delivered_at, read_at, code, msg, updated_at)
WHERE m.id = v.id AND m.status = v.old
"""


async def apply_receipts(
    session: AsyncSession, rows: list[dict[str, Any]], moved: dict[int, tally.Change]
) -> None:
    """Apply receipts' status transitions (`rows`, in ascending message id order) and their
    campaigns' counter changes. Each row is guarded by the status it was read in (the row
    is locked, so the guard only ever protects against a bug, never a race)."""
    for part in chunks(rows):
        if is_sqlite(session):
            await session.execute(_UPDATE_MESSAGE, list(part))
        else:
            await session.execute(text(_UPDATE_MESSAGES_PG), as_arrays(part))
    await tally.record(session, moved)
    if rows:
        now = max(row["b_updated_at"] for row in rows)
        await events.record(session, [row["b_id"] for row in rows], now)


# --- no final receipt in time; refunds ----------------------------------------------


EXPIRE_LIMIT = 5000  # messages per call: one short transaction, whatever the backlog


async def expire_overdue(
    session: AsyncSession, now: datetime, timeout: timedelta, limit: int = EXPIRE_LIMIT
) -> int:
    """Turn up to `limit` messages accepted longer than `timeout` ago and still without a
    final receipt (`sent`) into `expired`, oldest first, counters moved in step. A provider
    that accepted a message owes a final receipt; some never send one (a carrier without
    delivery reports, a lost callback): after the timeout the statistics say so instead of
    `sent` forever. A receipt that comes later still applies (`states.TRANSITIONS`).
    Returns how many messages expired."""
    cutoff = now - timeout
    due = (
        select(Message.id)
        .where(Message.status == MessageStatus.SENT, Message.sent_at < cutoff)
        .order_by(Message.sent_at)
        .limit(limit)
    )
    picked = due.cte("due")
    if not is_sqlite(session):
        # Materialized, or PostgreSQL may re-run the LIMIT inside IN (...) and take more;
        # SKIP LOCKED: another sweeper takes the others.
        picked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
    rows = await session.execute(
        update(Message)
        .where(Message.id.in_(select(picked.c.id)), Message.status == MessageStatus.SENT)
        .values(status=MessageStatus.EXPIRED, updated_at=now)
        .returning(Message.id, Message.campaign_id, Message.contact_id)
        .execution_options(synchronize_session=False)
    )
    returned = rows.all()
    expired = [_counted(campaign_id, contact_id) for _id, campaign_id, contact_id in returned]
    await events.record(session, [int(row[0]) for row in returned], now)
    per_campaign = Counter(cid for cid in expired if cid is not None)
    for campaign_id in sorted(per_campaign):
        k = per_campaign[campaign_id]
        await tally.move(session, campaign_id, {"sent": -k, "expired": k})
    return len(expired)


@dataclass(slots=True)
class Charged:
    id: int
    account_id: int
    campaign_id: int | None
    contact_id: int | None
    price: int


async def take_back_charges(
    session: AsyncSession, message_ids: Sequence[int], now: datetime
) -> list[Charged]:
    """Zero the price of these messages (they are refunded) and answer what each had been
    charged; messages already at 0 are left out, so a message is refunded once."""
    out: list[Charged] = []
    for part in chunks(sorted(set(message_ids))):
        rows = await session.execute(
            select(
                Message.id,
                Message.account_id,
                Message.campaign_id,
                Message.contact_id,
                Message.price,
            ).where(Message.id.in_(part), Message.price > 0)
        )
        found = [Charged(*row) for row in rows]
        if found:
            await session.execute(
                update(Message)
                .where(Message.id.in_([c.id for c in found]), Message.price > 0)
                .values(price=0, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        out.extend(found)
    return out


# --- compliance: held outside sending hours, skipped at the moment of sending -----------


@dataclass(slots=True)
class Held:
    id: int
    campaign_id: int
    contact_id: int | None
    not_before: datetime


async def hold_claimed(
    session: AsyncSession, owner: str, held: Sequence[Held], now: datetime
) -> int:
    """`sending` -> `queued` until `not_before` (outside its sending hours): the message
    is given back without an attempt counted, due again at that instant (its
    `next_attempt_at`, so the claim's index passes over it until then)."""
    return await _settle_claimed(
        session,
        owner,
        MessageStatus.QUEUED,
        [(h, {"not_before": h.not_before, "next_attempt_at": h.not_before}) for h in held],
        now,
    )


@dataclass(slots=True)
class Skip:
    id: int
    campaign_id: int
    contact_id: int | None
    code: str  # EXPIRED, FREQUENCY_CAP, NO_CONSENT
    message: str


async def skip_claimed(
    session: AsyncSession, owner: str, skips: Sequence[Skip], now: datetime
) -> int:
    """`sending` -> `skipped` with the reason (`EXPIRED`, `FREQUENCY_CAP`, `NO_CONSENT`):
    never handed to a provider, so never charged; what the campaign reserved for it is
    released with the rest of its reservation when it completes."""
    return await _settle_claimed(
        session,
        owner,
        MessageStatus.SKIPPED,
        [(s, {"error_code": s.code, "error_message": s.message}) for s in skips],
        now,
    )


class _Leased(Protocol):
    id: int
    campaign_id: int
    contact_id: int | None


async def _settle_claimed(
    session: AsyncSession,
    owner: str,
    status: MessageStatus,
    claimed: Sequence[tuple[_Leased, Mapping[str, Any]]],
    now: datetime,
) -> int:
    """`sending` -> `status` for messages `owner` leases, the lease dropped and each row
    given its own values of the same extra columns: one guarded UPDATE per row in one
    executemany, then one tally move per campaign (a message of no campaign, contact_id
    None, has no counters to move)."""
    if not claimed:
        return 0
    columns = sorted(claimed[0][1])
    table = cast(Table, Message.__table__)
    stmt = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.status == MessageStatus.SENDING,
            table.c.lease_owner == owner,
        )
        .values(
            status=status,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
            **{c: bindparam(f"b_{c}") for c in columns},
        )
    )
    conn = await session.connection()
    await conn.execute(
        stmt, [{"b_id": m.id, **{f"b_{c}": values[c] for c in columns}} for m, values in claimed]
    )
    per_campaign = Counter(m.campaign_id for m, _ in claimed if m.contact_id is not None)
    for campaign_id in sorted(per_campaign):
        k = per_campaign[campaign_id]
        await tally.move(session, campaign_id, {"sending": -k, status.value: k})
    return len(claimed)


EXPIRED_MESSAGE = "The campaign expired before this was handed to a provider."


async def expire_queued(session: AsyncSession, campaign_id: int, now: datetime) -> int:
    """`queued` -> `skipped` (`EXPIRED`) for every message of a campaign past its
    `expiresAt`, held ones included, in one UPDATE. Never charged."""
    result = await session.execute(
        update(Message)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.QUEUED)
        .values(
            status=MessageStatus.SKIPPED,
            error_code="EXPIRED",
            error_message=EXPIRED_MESSAGE,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    skipped = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if skipped:
        await tally.move(session, campaign_id, {"queued": -skipped, "skipped": skipped})
    return skipped


@dataclass(slots=True)
class PlaceGroup:
    """Recipients that share what decides their sending hours: country, the contact's own
    zone and region (empty: none), and the first characters of the number."""

    country: str
    timezone: str
    region: str
    prefix: str


async def hold_materialized(
    session: AsyncSession,
    campaign_id: int,
    after: int,
    upto: int,
    group: PlaceGroup,
    prefix_length: int,
    not_before: datetime,
) -> int:
    """Messages just materialized (contact ids in (after, upto]) of one place group that
    are outside their window stay `queued` but become due only at `not_before` (no status
    change, no counter change)."""
    members = select(Contact.id).where(
        Contact.id > after,
        Contact.id <= upto,
        Contact.country == group.country,
        func.coalesce(Contact.timezone, "") == group.timezone,
        func.coalesce(Contact.region, "") == group.region,
        func.substr(Contact.phone, 1, prefix_length) == group.prefix,
    )
    result = await session.execute(
        update(Message)
        .where(
            Message.campaign_id == campaign_id,
            Message.status == MessageStatus.QUEUED,
            Message.contact_id > after,
            Message.contact_id <= upto,
            Message.contact_id.in_(members),
        )
        .values(not_before=not_before, next_attempt_at=not_before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
