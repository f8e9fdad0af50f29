"""Which database a session or a connection talks to, for the few statements that differ
between SQLite and PostgreSQL."""

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

Bound = AsyncSession | Session | AsyncConnection | Connection


def dialect_name(bound: Bound) -> str:
    """ "sqlite" or "postgresql"."""
    if isinstance(bound, AsyncSession | Session):
        return str(bound.get_bind().dialect.name)
    return str(bound.dialect.name)


def is_sqlite(bound: Bound) -> bool:
    return dialect_name(bound) == "sqlite"


def is_postgres(bound: Bound) -> bool:
    return dialect_name(bound) == "postgresql"
