"""Queries on users, sessions and the login throttle."""

from datetime import datetime

from sqlalchemy import Table, bindparam, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.base import UTCDateTime
from clarion.people.models import LoginThrottle, User, UserSession
from clarion.roles import OWNER


async def user_of(
    session: AsyncSession, account_id: int, user_id: int, *, for_update: bool = False
) -> User | None:
    query = select(User).where(User.id == user_id, User.account_id == account_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def user_by_email(session: AsyncSession, email_key: str) -> User | None:
    return (
        await session.execute(select(User).where(User.email_key == email_key))
    ).scalar_one_or_none()


async def users_page(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[User], int]:
    where = User.account_id == account_id
    total = (await session.execute(select(func.count()).select_from(User).where(where))).scalar()
    rows = await session.execute(
        select(User).where(where).order_by(User.id).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total or 0)


async def owners_locked(session: AsyncSession, account_id: int) -> list[int]:
    """Ids of the account's owners, rows locked (ids ascending) so that two requests removing
    owners at once see each other's change."""
    rows = await session.execute(
        select(User.id)
        .where(User.account_id == account_id, User.role == OWNER)
        .order_by(User.id)
        .with_for_update()
    )
    return list(rows.scalars())


async def session_with_user(
    session: AsyncSession, token_hash: str
) -> tuple[UserSession, User] | None:
    row = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == token_hash)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def end_sessions(
    session: AsyncSession, user_id: int, *, keep_session_id: int | None = None
) -> None:
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    await session.execute(query)


async def end_session(session: AsyncSession, session_id: int) -> None:
    await session.execute(delete(UserSession).where(UserSession.id == session_id))


async def throttle_of(session: AsyncSession, email_key: str) -> LoginThrottle | None:
    return await session.get(LoginThrottle, email_key, populate_existing=True)


async def count_failure(
    session: AsyncSession, email_key: str, now: datetime, window_start_after: datetime
) -> None:
    """One more failed login for the email: a new window when the last began before
    `window_start_after`. One statement, so concurrent failures all count."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table: Table = LoginThrottle.__table__  # type: ignore[assignment]
    now_p = bindparam("now", now, type_=UTCDateTime)
    cutoff = bindparam("cutoff", window_start_after, type_=UTCDateTime)
    current = table.c.window_started_at > cutoff
    stmt = insert(table).values(email_key=email_key, window_started_at=now_p, failures=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.email_key],
        set_={
            "failures": case((current, table.c.failures + 1), else_=1),
            "window_started_at": case((current, table.c.window_started_at), else_=now_p),
        },
    )
    await session.execute(stmt)


async def clear_failures(session: AsyncSession, email_key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.email_key == email_key))
