from sqlalchemy.orm import Session

from clarion.db.dialect import is_postgres, is_sqlite
from clarion.db.session import Database


async def test_sessions_and_connections_name_their_backend(db: Database, database_url: str) -> None:
    sqlite = database_url.startswith("sqlite")
    async with db.session() as session:
        assert (is_sqlite(session), is_postgres(session)) == (sqlite, not sqlite)

        def in_sync_code(sync_session: Session) -> tuple[bool, bool]:
            return is_sqlite(sync_session), is_postgres(sync_session)

        assert await session.run_sync(in_sync_code) == (sqlite, not sqlite)
    async with db.writer.connect() as conn:
        assert (is_sqlite(conn), is_postgres(conn)) == (sqlite, not sqlite)
        assert await conn.run_sync(lambda sync_conn: is_sqlite(sync_conn)) == sqlite
