"""Test fixtures: every database test runs on SQLite and, when reachable, on PostgreSQL.

Each test session migrates a fresh database per backend (a new SQLite file; a new PostgreSQL
database, dropped at the end); each test starts from empty tables: a copy of the SQLite file
of its own, or the PostgreSQL database emptied.
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from clarion.app import create_app
from clarion.campaigns.credits import check_invariants
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.migrate import upgrade
from clarion.db.models import Base
from clarion.db.session import Database

ADMIN_TOKEN = "test-admin-token"
PG_ADMIN_DSN = os.environ.get("CLARION_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def statements_sent(db: Database, on_statement: Callable[[Any, str, Any], None]) -> Iterator[None]:
    """Inside the block, `on_statement(connection, statement, parameters)` runs before each
    statement this process sends through the database's writer engine."""

    def before(conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        on_statement(conn, statement, parameters)

    engine = db.writer.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def _pg_reachable() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


async def _require_pg() -> None:
    """Skip the test when PostgreSQL is not reachable (fail it where CI requires it)."""
    if not await _pg_reachable():
        if os.environ.get("CLARION_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here but not reachable at {PG_ADMIN_DSN}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: PostgreSQL tests skipped")


async def _pg_exec(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database for this test session, on each backend: on SQLite the file
    each test copies, on PostgreSQL the database each test empties."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'clarion.db'}"
        upgrade(url)
        yield url
        return
    asyncio.run(_require_pg())
    name = f"clarion_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    upgrade(url)
    yield url
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This test's database. On SQLite a copy of the migrated file of its own: a connection
    that an earlier test lost with a transaction open keeps that file's write lock for as long
    as the process lives, and must not hold up the tests after it."""
    if not migrated_database.startswith("sqlite"):
        yield migrated_database
        return
    template = Path(make_url(migrated_database).database or "")
    copy = tmp_path_factory.mktemp("test-db") / "clarion.db"
    shutil.copyfile(template, copy)
    yield f"sqlite:///{copy}"
    for leftover in copy.parent.iterdir():  # the file, its -wal and -shm (a few hundred KB)
        leftover.unlink()


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of this test's own on each backend, with no tables yet (a migration test
    upgrades it to the revision it starts from)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    await _require_pg()
    name = f"clarion_empty_{uuid.uuid4().hex[:12]}"
    await _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def fresh_pg() -> AsyncIterator[Database]:
    """A PostgreSQL database of this test's own, migrated and never analyzed, with
    autovacuum off on every table: the planner's statistics are what the test makes them
    (none, or what its own ANALYZE saw) until it ends. Skipped, like every PostgreSQL test,
    when the server is not reachable."""
    await _require_pg()
    name = f"clarion_plans_{uuid.uuid4().hex[:12]}"
    await _pg_exec(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, _pg_url(name))
        database = Database(_pg_url(name))
        try:
            async with database.writer.begin() as conn:
                for table in Base.metadata.sorted_tables:
                    await conn.execute(
                        text(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)')
                    )
            yield database
        finally:
            await database.dispose()
    finally:
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _empty_pg(db: Database) -> None:
    """Empty every table. Connections to the database that earlier tests left behind are
    ended first: one lost with a transaction open would make TRUNCATE wait for ever."""
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    async with db.writer.begin() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        sender_enabled=False,
        simulator_receipt_delay=0.05,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    if not database.is_sqlite:  # a SQLite test has a fresh copy (see `database_url`)
        await _empty_pg(database)
    yield database
    await database.dispose()


@dataclass
class Api:
    """An HTTP client on the real ASGI app, with helpers to create accounts."""

    client: httpx.AsyncClient
    db: Database

    async def admin(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def new_account(self, name: str = "acme", credits: float = 0) -> "AccountClient":
        response = await self.admin(
            "POST", "/admin/accounts", json={"name": name, "credits": credits}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return AccountClient(self.client, body["id"], body["apiKey"])


@dataclass
class AccountClient:
    """Requests signed with one account's API key."""

    client: httpx.AsyncClient
    id: int
    key: str

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)


AppFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(settings: Settings, db: Database) -> AsyncIterator[AppFactory]:
    """Start the app (with its lifespan) with optional setting overrides."""
    stack: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def factory(*, clock: Callable[[], datetime] | None = None, **overrides: Any) -> Api:
        app = create_app(settings.model_copy(update=overrides), db=db, clock=clock or utcnow)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        stack.append(manager)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://clarion.test"
        )
        clients.append(client)
        return Api(client, db)

    yield factory
    for client in clients:
        await client.aclose()
    for manager in reversed(stack):
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def api(make_api: AppFactory) -> Api:
    return await make_api()


@pytest.fixture
async def account(api: Api) -> AccountClient:
    return await api.new_account("acme", credits=1000)


async def assert_ledger_consistent(db: Database, account_id: int) -> None:
    """The credits invariants (sum(ledger) == balance, reserved == open reservations)."""
    async with db.session(write=False) as session:
        problems = await check_invariants(session, account_id)
    assert problems == [], problems
