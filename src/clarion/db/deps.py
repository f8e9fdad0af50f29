"""Session dependencies: the request owns its transaction."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session(write=True) as session, session.begin():
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session(write=False) as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(_write_session)]
"""A session whose transaction commits when the endpoint returns and rolls back on error.
Services flush(), never commit()."""

ReadSessionDep = Annotated[AsyncSession, Depends(_read_session)]
"""For endpoints that only read (on SQLite they never wait for a writer)."""
