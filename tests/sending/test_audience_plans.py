"""Statements over a whole audience stay linear whatever PostgreSQL's statistics say.

Right after a bulk load a table has no statistics (or statistics from when it was small):
the planner then guesses a few rows and may pick nested loops that rescan one side of a join
for every row of the other, quadratic in the audience. Each test bulk-loads a fresh database
as an import would, without ANALYZE, runs the estimate and the materializer to capture the
statements they really send, and EXPLAIN ANALYZEs each statement over the audience. The
check is on the plan's work, not on time: the rows every node produced or threw away, times
the loops it ran, must stay within a small multiple of the audience, and no set may be
rescanned per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from clarion.campaigns.estimate import price_audience
from clarion.campaigns.models import Campaign
from clarion.campaigns.repository import CapFilter
from clarion.compliance.schemas import ComplianceIn
from clarion.compliance.service import update_settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.pricing.rates import load_rate_card
from clarion.sending.materialize import materialize_chunk
from tests.conftest import statements_sent
from tests.sending.conftest import seed_campaign, set_rates

N = 6_000  # quadratic plans do ~N^2/2 = 18,000,000 row visits here, linear ones ~N
WORK_PER_RECIPIENT = 40
# Nodes that, run once per outer row, rescan a whole set (an index probe is fine).
RESCANNED = {"Seq Scan", "CTE Scan", "Materialize", "Sort", "Unique", "Subquery Scan", "Hash"}


async def _bulk_load(db: Database, account_id: int, n: int, first: int) -> tuple[int, int]:
    """n contacts in a new list, every tenth also in a new exclusion list, one in a hundred
    opted out of SMS; as an import writes them, with no ANALYZE. Returns the two lists."""
    async with db.transaction() as s:
        lists = []
        for name in ("audience", "excluded"):
            row = await s.execute(
                text(
                    "INSERT INTO contact_list (account_id, name, created_at, updated_at) "
                    "VALUES (:a, :name, now(), now()) RETURNING id"
                ),
                {"a": account_id, "name": f"{name}-{first}"},
            )
            lists.append(int(row.scalar_one()))
        audience, excluded = lists
        await s.execute(
            text(
                "INSERT INTO contact (account_id, phone, country, first_name, attributes,"
                " created_at, updated_at) "
                "SELECT :a, '+3361' || lpad(x::text, 7, '0'), 'FR', 'Ann' || (x % 7),"
                " '{}'::jsonb, now(), now()"
                " FROM generate_series(CAST(:first AS INT), CAST(:last AS INT)) x"
            ),
            {"a": account_id, "first": first, "last": first + n - 1},
        )
        await s.execute(
            text(
                "INSERT INTO list_member (list_id, contact_id, created_at) "
                "SELECT :l, id, now() FROM contact WHERE phone >= :lo"
            ),
            {"l": audience, "lo": f"+3361{first:07d}"},
        )
        await s.execute(
            text(
                "INSERT INTO list_member (list_id, contact_id, created_at) "
                "SELECT :x, contact_id, now() FROM list_member WHERE list_id = :l "
                "AND contact_id % 10 = 0"
            ),
            {"x": excluded, "l": audience},
        )
        await s.execute(
            text(
                "INSERT INTO contact_opt_out (contact_id, channel, source, created_at) "
                "SELECT contact_id, 'sms', 'api', now() FROM list_member WHERE list_id = :l "
                "AND contact_id % 100 = 1"
            ),
            {"l": audience},
        )
    return audience, excluded


async def _account(db: Database) -> int:
    async with db.transaction() as s:
        row = await s.execute(
            text(
                "INSERT INTO account (name, balance, reserved, created_at, updated_at) "
                "VALUES ('plans', 0, 0, now(), now()) RETURNING id"
            )
        )
        return int(row.scalar_one())


@contextmanager
def _captured(db: Database) -> Iterator[list[tuple[str, Any, str]]]:
    """The statements over the audience sent to the database inside the block."""
    seen: list[tuple[str, Any, str]] = []

    def record(conn: Any, statement: str, params: Any) -> None:
        if "list_member" in statement and "current_setting" not in statement:
            # the planner setting in force for it, to EXPLAIN it the same way
            setting = conn.exec_driver_sql("SELECT current_setting('enable_nestloop')").scalar()
            seen.append((statement, params, setting))

    with statements_sent(db, record):
        yield seen


class _Rollback(Exception):
    pass


async def _statements(db: Database, campaign_id: int) -> list[tuple[str, Any, str]]:
    """What pricing the campaign and materializing it in one chunk send; nothing kept."""
    with _captured(db) as seen:
        try:
            async with db.transaction() as s:
                c = (
                    await s.execute(select(Campaign).where(Campaign.id == campaign_id))
                ).scalar_one()
                await price_audience(s, c, None, await load_rate_card(s))
                assert await materialize_chunk(s, campaign_id, 10 * N, utcnow()) is not None
                raise _Rollback
        except _Rollback:
            pass
    assert seen
    return seen


def _work(node: dict[str, Any], problems: list[str]) -> float:
    """Rows the node produced or discarded, times its loops, plus its children's."""
    loops = node.get("Actual Loops", 1)
    rows = node.get("Actual Rows", 0)
    for key in ("Rows Removed by Filter", "Rows Removed by Join Filter"):
        rows += node.get(key, 0)
    children = node.get("Plans", [])
    if node["Node Type"] == "Nested Loop" and len(children) == 2:
        inner = children[1]
        if inner["Node Type"] in RESCANNED and inner.get("Actual Loops", 1) > 1:
            problems.append(f"nested loop rescanning a {inner['Node Type']}")
    return rows * loops + sum(_work(child, problems) for child in children)


async def _assert_linear(
    db: Database, statements: list[tuple[str, Any, str]], audience: int
) -> None:
    for statement, params, nestloop in statements:
        async with db.writer.connect() as conn:
            trans = await conn.begin()
            await conn.execute(text(f"SET LOCAL enable_nestloop = {nestloop}"))
            explained = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + statement, params
            )
            plan = explained.scalar_one()
            await trans.rollback()
        if isinstance(plan, str):
            plan = json.loads(plan)
        problems: list[str] = []
        work = _work(plan[0]["Plan"], problems)
        assert not problems, (problems, statement)
        assert work <= WORK_PER_RECIPIENT * audience, (work, statement)


@pytest.mark.parametrize("text_", ["Hello", "Hello {{firstName}}"], ids=["plain", "personalized"])
async def test_audience_statements_stay_linear_on_a_fresh_bulk_load(fresh_pg, text_):
    pg = fresh_pg
    await set_rates(pg, [("sms", "FR", "", 700)])
    account = await _account(pg)
    audience, excluded = await _bulk_load(pg, account, N, first=0)
    cid = await seed_campaign(pg, account, [audience], exclude_list_ids=[excluded], text=text_)
    await _assert_linear(pg, await _statements(pg, cid), N)


async def test_audience_statements_stay_linear_on_statistics_from_a_small_table(fresh_pg):
    """Analyzed when the account had a few contacts; then a large list arrives."""
    pg = fresh_pg
    await set_rates(pg, [("sms", "FR", "", 700)])
    account = await _account(pg)
    await _bulk_load(pg, account, 50, first=0)
    async with pg.writer.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    audience, excluded = await _bulk_load(pg, account, N, first=1_000)
    cid = await seed_campaign(pg, account, [audience], exclude_list_ids=[excluded])
    await _assert_linear(pg, await _statements(pg, cid), N)


async def test_a_plain_estimate_reads_the_audience_once_whatever_it_leaves_out(fresh_pg):
    """Each statement over the audience reads every contact and membership again (a
    million of each costs about a second): pricing a plain text over lists, under
    requireConsent and a frequency cap, counts the candidates, the opted out, those without
    consent, those over the cap and the memberships in one, and that one stays linear."""
    pg = fresh_pg
    await set_rates(pg, [("sms", "FR", "", 700)])
    account = await _account(pg)
    audience, excluded = await _bulk_load(pg, account, N, first=0)
    cid = await seed_campaign(pg, account, [audience], exclude_list_ids=[excluded], text="Hello")
    async with pg.transaction() as s:
        await update_settings(s, account, ComplianceIn(require_consent=True))
    cap = CapFilter(since=utcnow() - timedelta(hours=24), messages=2)
    with _captured(pg) as seen:
        async with pg.transaction() as s:
            c = (await s.execute(select(Campaign).where(Campaign.id == cid))).scalar_one()
            p = await price_audience(s, c, None, await load_rate_card(s), cap=cap)
    assert p.no_consent == N - N // 10 - N // 100  # nobody granted it; not the opted out
    assert len(seen) == 1, [statement for statement, _, _ in seen]
    await _assert_linear(pg, seen, N)
