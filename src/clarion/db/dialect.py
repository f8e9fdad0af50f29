"""Which database a session talks to: the one place that asks."""

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def is_postgres(session: AsyncSession | AsyncConnection) -> bool:
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    return bind.dialect.name == "postgresql"


def is_sqlite(session: AsyncSession | AsyncConnection) -> bool:
    return not is_postgres(session)
