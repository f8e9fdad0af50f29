"""Plans for statements over a whole audience that do not depend on statistics, and
statistics kept fresh after the product's own bulk writes.

PostgreSQL plans from table statistics, and right after an import they are missing (never
analyzed) or stale (analyzed when the table was small). It then guesses a handful of rows
and may join by a nested loop that rescans one side for every row of the other: quadratic in
the audience (a 100,000-recipient campaign took minutes to start). Hash and merge joins cost
about the same whatever the guess, so statements that read a whole audience are planned
without nested loops; an index probe per row would also be linear, but over a million
contacts a hash join is twice as fast (measured on a fresh, unanalyzed load).
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database


@asynccontextmanager
async def without_nested_loops(session: AsyncSession) -> AsyncIterator[None]:
    """Statements planned inside the block use no nested loop join (PostgreSQL; SQLite has
    no such choice to make). The setting is local to the transaction and put back on exit."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = (
        await session.execute(
            text(
                "SELECT current_setting('enable_nestloop'), "
                "set_config('enable_nestloop', 'off', true)"
            )
        )
    ).scalar_one()
    # Put back on normal exit only: after an error the transaction is rolled back (and the
    # setting with it), and a statement on an aborted transaction would hide the error.
    yield
    await session.execute(
        text("SELECT set_config('enable_nestloop', :value, true)"), {"value": previous}
    )


# A table is worth analyzing once the rows changed since its last ANALYZE exceed 50 + 10% of
# its rows: autovacuum's own rule at its defaults (autovacuum_analyze_threshold,
# autovacuum_analyze_scale_factor). Below that, statistics still describe the table well
# enough; above it (and at once for a table never analyzed), the next plans would be guesses.
# The changes are what the caller just wrote, or the table's growth since then (in pages:
# known at once, where the server's own count of changes reaches its views seconds late),
# so that many small bulk adds add up.
ANALYZE_BASE_ROWS = 50
ANALYZE_SHARE = 0.1

_STALE = """
SELECT c.relname FROM pg_class c
WHERE c.oid = to_regclass(:table)
  AND (:written > :base + :share * greatest(c.reltuples, 0)
       OR pg_relation_size(c.oid) / current_setting('block_size')::int
          > (1 + :share) * c.relpages + 1)
"""


async def analyze_if_changed(db: Database, written: Mapping[str, int]) -> list[str]:
    """ANALYZE the tables (PostgreSQL) changed by more than the share above since their last
    ANALYZE; returns them. `written`: rows the caller just wrote, per table. Run by the
    product after its bulk writes (imports, bulk adds) have committed: autovacuum may be
    off, and where it is on it analyzes a minute or more later, while users confirm a
    campaign right after an import. SQLite keeps no statistics unless asked, and its
    planner without them is the one the statements are written for: nothing to do there."""
    if db.is_sqlite:
        return []
    analyzed = []
    async with db.writer.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table, rows in sorted(written.items()):
            params = {"table": table, "written": rows}
            params.update(base=ANALYZE_BASE_ROWS, share=ANALYZE_SHARE)
            if (await conn.execute(text(_STALE), params)).scalar_one_or_none() is None:
                continue
            # SKIP_LOCKED: another process analyzing it already does the job.
            await conn.execute(text(f'ANALYZE (SKIP_LOCKED) "{table}"'))
            analyzed.append(table)
    return analyzed
