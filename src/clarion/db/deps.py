"""Session dependencies: the request owns its transaction."""

from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database


class WriteHook(Protocol):
    """Something every request's write transaction carries (set on app.state.write_hooks)."""

    def prepare(self, session: AsyncSession, request: Request) -> None: ...

    async def before_commit(self, session: AsyncSession, request: Request) -> None: ...


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    hooks = getattr(request.app.state, "write_hooks", ())
    async with db.session(write=True) as session, session.begin():
        for hook in hooks:
            hook.prepare(session, request)
        yield session
        # The endpoint succeeded: what must commit with its change (the audit row) is
        # written now, in the same transaction.
        for hook in hooks:
            await hook.before_commit(session, request)


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session(write=False) as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(_write_session)]
"""A session whose transaction commits when the endpoint returns and rolls back on error.
Services flush(), never commit()."""

ReadSessionDep = Annotated[AsyncSession, Depends(_read_session)]
"""For endpoints that only read (on SQLite they never wait for a writer)."""
