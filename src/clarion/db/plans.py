"""Plans for statements over a whole audience that do not depend on statistics.

PostgreSQL plans from table statistics, and right after an import they are missing (never
analyzed) or stale (analyzed when the table was small). It then guesses a handful of rows
and may join by a nested loop that rescans one side for every row of the other: quadratic in
the audience (a 100,000-recipient campaign took minutes to start). Hash and merge joins cost
about the same whatever the guess, so statements that read a whole audience are planned
without nested loops; an index probe per row would also be linear, but over a million
contacts a hash join is twice as fast (measured on a fresh, unanalyzed load).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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
