"""The generic plans of the per-batch statements stay linear (PostgreSQL).

The engine sends the recording UPDATE and the frequency cap's read thousands of times with
the same text; asyncpg prepares them, and after five runs PostgreSQL may keep a *generic*
plan: planned once without the values (so without the arrays' lengths, which it guesses as
10) on the statistics of that moment. Both once went wrong that way (docs/engine.md, "generic
plan"). EXPLAIN with bound values plans for those values instead, and that plan was always
fine, so these tests build the generic plan on purpose: they shape the statistics as the
engine meets them, capture the exact text the product sends (with the planner setting in
force for it), PREPARE it by hand and EXPLAIN EXECUTE it under `plan_cache_mode =
force_generic_plan`. Each then plans the statement as it was before its fix on the same
statistics and checks that the bad plan shows: the check is seen to fail where it should.

The tables hold fewer live rows than ANALYZE samples (30,000: it reads them all), so the
statistics, and the plans, are the same on every run.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages import tally
from clarion.messages.models import Message
from clarion.messages.transitions import Outcome, apply_receipts, claim_batch, record_outcomes
from clarion.sending.repository import marketing_sent_since
from tests.conftest import statements_sent

MESSAGES = 5_000  # the recording's campaign
BATCH = 1_000  # a claimed batch, and the cap read's chunk of ids (db.params.CHUNK)
PURGED = 20_000  # rows a retention purge left dead before the cap read's statistics
# Inner sides of a nested loop that are read again in full for every outer row (an index
# probe per row is what a nested loop is for, and is not among them).
RESCANNED = {"Function Scan", "Seq Scan", "CTE Scan", "Materialize", "Sort", "Subquery Scan"}
_ONE_CONTACT = re.compile(r"\bcontact_id = (?!ANY\b)")  # an equality to one value


@dataclass(frozen=True)
class Sent:
    statement: str  # as the driver received it, with $n parameters
    nestloop: str  # enable_nestloop when it was sent


class _Rollback(Exception):
    pass


@contextlib.contextmanager
def _captured(db: Database, wanted: Callable[[str], bool]) -> Iterator[list[Sent]]:
    """The wanted statements sent to the database inside the block."""
    seen: list[Sent] = []

    def record(conn: Any, statement: str, _parameters: Any) -> None:
        if wanted(statement):
            setting = conn.exec_driver_sql("SELECT current_setting('enable_nestloop')").scalar()
            seen.append(Sent(statement, setting))

    with statements_sent(db, record):
        yield seen


async def _sent_by(
    db: Database, wanted: Callable[[str], bool], run: Callable[[AsyncSession], Awaitable[Any]]
) -> Sent:
    """The one wanted statement that `run` sends, in a transaction then rolled back."""
    with _captured(db, wanted) as seen, contextlib.suppress(_Rollback):
        async with db.transaction() as session:
            await run(session)
            raise _Rollback
    assert len(seen) == 1, seen
    return seen[0]


async def _generic_plan(db: Database, sent: Sent) -> dict[str, Any]:
    """The statement's generic plan, under the planner setting it was sent with. Every
    parameter is NULL: a generic plan is made without looking at the values."""
    async with db.writer.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute(f"PREPARE generic_plan_check AS {sent.statement}")
        try:
            async with raw.transaction():
                await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                await raw.execute(f"SET LOCAL enable_nestloop = {sent.nestloop}")
                n = await raw.fetchval(
                    "SELECT cardinality(parameter_types) FROM pg_prepared_statements "
                    "WHERE name = 'generic_plan_check'"
                )
                args = ", ".join(["NULL"] * n)
                plan = await raw.fetchval(
                    f"EXPLAIN (FORMAT JSON) EXECUTE generic_plan_check({args})"
                )
                planned = await raw.fetchrow(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE name = 'generic_plan_check'"
                )
        finally:
            await raw.execute("DEALLOCATE generic_plan_check")
    assert tuple(planned) == (1, 0)  # the plan shown is the generic one
    if isinstance(plan, str):  # the engine's connections decode JSON themselves
        plan = json.loads(plan)
    return dict(plan[0]["Plan"])


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _rescanned(plan: dict[str, Any]) -> list[str]:
    """What nested loops read again in full for every outer row."""
    return [
        node["Plans"][1]["Node Type"]
        for node in _nodes(plan)
        if node["Node Type"] == "Nested Loop" and node["Plans"][1]["Node Type"] in RESCANNED
    ]


def _message_reads(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The nodes that read `message` rows or one of its indexes (a bitmap heap scan's index
    scans name no table: they count for the heap scan above them)."""
    for node in _nodes(plan):
        if node.get("Relation Name") != "message":
            continue
        if node["Node Type"] == "Bitmap Heap Scan":
            yield from (n for n in _nodes(node) if n["Node Type"] == "Bitmap Index Scan")
        elif node["Node Type"] in {"Seq Scan", "Index Scan", "Index Only Scan"}:
            yield node


def _described(reads: list[dict[str, Any]]) -> list[str]:
    return [f"{r['Node Type']} {r.get('Index Name', '')} {r.get('Index Cond', '')}" for r in reads]


async def _account(session: AsyncSession, name: str) -> int:
    row = await session.execute(
        text(
            "INSERT INTO account (name, balance, reserved, created_at, updated_at) "
            "VALUES (:name, 0, 0, now(), now()) RETURNING id"
        ),
        {"name": name},
    )
    return int(row.scalar_one())


async def _campaign(session: AsyncSession, account_id: int) -> int:
    campaign = Campaign(
        account_id=account_id, name="c", channel="sms", status="sending", purpose="marketing"
    )
    session.add(campaign)
    await session.flush()
    return campaign.id


async def _queue(session: AsyncSession, account_id: int, campaign_id: int, contacts: range) -> None:
    """Queued messages, due an hour ago, as the materializer leaves them."""
    await session.execute(
        text(
            "INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel,"
            " status, units, price, attempts, next_attempt_at, created_at, updated_at) "
            "SELECT :c, :a, x, '+3361' || lpad(x::text, 7, '0'), 'FR', 'sms', 'queued', 0, 0,"
            " 0, now() - interval '1 hour', now(), now() "
            "FROM generate_series(CAST(:first AS INT), CAST(:last AS INT)) x"
        ),
        {"c": campaign_id, "a": account_id, "first": contacts.start, "last": contacts.stop - 1},
    )


async def _analyze(db: Database) -> None:
    async with db.writer.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))


async def test_recording_is_not_planned_as_a_nested_loop_over_the_outcomes(fresh_pg):
    """Statistics taken while other workers held a few leases (none of them this worker's),
    then this worker leases a batch and records it. The generic plan guesses 10 outcomes
    and one row leased to this owner; with nested loops allowed it reads the whole `unnest`
    again for each leased row (a batch of 1,000: a million comparisons)."""
    db = fresh_pg
    async with db.transaction() as s:
        account = await _account(s, "recording")
        campaign = await _campaign(s, account)
        await _queue(s, account, campaign, range(1, MESSAGES + 1))
        await s.execute(
            text(
                "UPDATE message SET status = 'sending', lease_owner = 'other-' || (id % 7),"
                " lease_until = now() + interval '5 minutes' WHERE id % 50 = 0"
            )
        )
    await _analyze(db)
    now = utcnow()
    async with db.transaction() as s:
        claimed = await claim_batch(s, "w1", campaign, BATCH, now, now + timedelta(minutes=5))
    assert len(claimed) == BATCH
    outcomes = [
        Outcome(c.id, "sent", "sms", "fake", f"p-{c.id}", units=1, price=700, attempts=1)
        for c in claimed
    ]
    sent = await _sent_by(
        db,
        lambda sql: sql.lstrip().startswith("UPDATE message AS m"),
        lambda s: record_outcomes(s, "w1", outcomes, now),
    )

    assert _rescanned(await _generic_plan(db, sent)) == []
    assert sent.nestloop == "off"  # what keeps it so: on these statistics, with nested
    # loops allowed, the same text is planned to read the outcomes again per leased row
    assert "Function Scan" in _rescanned(await _generic_plan(db, replace(sent, nestloop="on")))


def _sent_since_by_in_list(contact_ids: list[int], account_id: int, since: datetime) -> Any:
    """The cap read before its fix: `contact_id IN (...)` grouped by contact."""
    return (
        select(Message.contact_id, func.count())
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.contact_id.in_(contact_ids),
            Message.sent_at.is_not(None),
            Message.sent_at >= since,
            Message.account_id == account_id,
            Campaign.purpose == "marketing",
        )
        .group_by(Message.contact_id)
    )


async def test_cap_read_probes_each_contact_instead_of_scanning_the_period(fresh_pg):
    """Statistics taken after a retention purge (its rows dead, not yet vacuumed) and before
    two accounts' campaigns were sent, then sent within the period. The generic plan of
    `contact_id IN (...)` (1,000 values it cannot see) expects the period to hold a handful
    of rows in a large index, and reads everything the account sent in it, comparing each
    row with the whole list; the read per contact id can only probe the (account, contact,
    sent_at) index."""
    db = fresh_pg
    async with db.transaction() as s:
        account = await _account(s, "capped")
        other = await _account(s, "other")
        earlier = await _campaign(s, account)
        await s.execute(
            text(
                "INSERT INTO message (campaign_id, account_id, contact_id, phone, country,"
                " channel, status, units, price, attempts, next_attempt_at, created_at,"
                " updated_at, sent_at) "
                "SELECT :c, :a, x, '+3361' || lpad(x::text, 7, '0'), 'FR', 'sms', 'delivered',"
                " 1, 700, 1, now() - interval '90 days', now() - interval '90 days', now(),"
                " now() - interval '90 days' FROM generate_series(1, :n) x"
            ),
            {"c": earlier, "a": account, "n": PURGED},
        )
    async with db.transaction() as s:
        await s.execute(text("DELETE FROM message WHERE campaign_id = :c"), {"c": earlier})
        await _queue(s, account, await _campaign(s, account), range(1, BATCH + 1))
        await _queue(s, other, await _campaign(s, other), range(BATCH + 1, 2 * BATCH + 1))
    await _analyze(db)
    async with db.transaction() as s:
        await s.execute(
            text(
                "UPDATE message SET status = 'sent', sent_at = now() - (id % 48) * interval"
                " '1 hour'"
            )
        )
    contacts = list(range(1, BATCH + 1))
    since = utcnow() - timedelta(days=7)

    def is_cap_read(sql: str) -> bool:
        return "FROM message JOIN campaign" in sql

    sent = await _sent_by(
        db, is_cap_read, lambda s: marketing_sent_since(s, account, contacts, since)
    )
    reads = list(_message_reads(await _generic_plan(db, sent)))
    assert reads
    assert all(_ONE_CONTACT.search(r.get("Index Cond", "")) for r in reads), _described(reads)

    before_fix = await _sent_by(
        db, is_cap_read, lambda s: s.execute(_sent_since_by_in_list(contacts, account, since))
    )
    reads = list(_message_reads(await _generic_plan(db, before_fix)))
    assert any("contact_id" not in r.get("Index Cond", "") for r in reads), _described(reads)


async def test_receipts_update_probes_the_primary_key_for_each_receipt(fresh_pg):
    """The receipts' UPDATE joins a chunk of up to 1,000 receipts (arrays through `unnest`)
    with their messages by id. Whatever the statistics (none, as right after the messages
    were written; or taken then), its generic plan reads each message through the primary
    key: never the whole `message` table per chunk, never the chunk again per message."""
    db = fresh_pg
    async with db.transaction() as s:
        account = await _account(s, "receipts")
        campaign = await _campaign(s, account)
        await _queue(s, account, campaign, range(1, MESSAGES + 1))
        await s.execute(text("UPDATE message SET status = 'sent'"))
    now = utcnow()
    rows = [
        {
            "b_id": i,
            "b_old": "sent",
            "b_status": "delivered",
            "b_delivered_at": now,
            "b_read_at": None,
            "b_error_code": None,
            "b_error_message": None,
            "b_updated_at": now,
        }
        for i in range(1, BATCH + 1)
    ]
    for analyzed in (False, True):
        if analyzed:
            await _analyze(db)
        sent = await _sent_by(
            db,
            lambda sql: sql.lstrip().startswith("UPDATE message AS m"),
            lambda s: apply_receipts(s, rows, {campaign: tally.Change()}),
        )
        plan = await _generic_plan(db, sent)
        assert _rescanned(plan) == [], analyzed
        reads = list(_message_reads(plan))
        assert [(r["Node Type"], r.get("Index Name")) for r in reads] == [
            ("Index Scan", "pk_message")
        ], (analyzed, _described(reads))
