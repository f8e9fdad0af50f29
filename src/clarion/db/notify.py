"""Notifications between processes: PostgreSQL LISTEN/NOTIFY, in-process on SQLite.

    await notify(session, "api_key_revoked", key_hash)   # inside the writing transaction

    listener = Listener(db)
    listener.subscribe("api_key_revoked", on_revoked)    # a plain function of the payload
    listener.on_state(lambda live: ...)                  # False while not listening
    await listener.start() ... await listener.stop()

A notification is delivered when (and only if) the transaction that sent it commits, to every
listener on the database, in this process and (PostgreSQL) every other. Callbacks run on the
event loop and must be quick (drop a cache entry, set an asyncio.Event).

Delivery is best effort: while a listener's connection is down it hears nothing, so it
reports `live=False` to its state callbacks (a cache then shortens its trust) and `True`
after it reconnects, when whatever it caches should be considered stale. The embedded shape
(SQLite) is one process, so an in-process delivery reaches everybody.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from clarion.db.session import Database

log = logging.getLogger(__name__)

Callback = Callable[[str], None]
StateCallback = Callable[[bool], None]

_PENDING = "notify_pending"
RECONNECT_SECONDS = 1.0
# PostgreSQL caps a NOTIFY payload at 8000 bytes.
MAX_PAYLOAD = 7999

# In-process listeners by database URL (SQLite; PostgreSQL delivers through the server).
_local: dict[str, set["Listener"]] = defaultdict(set)


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Send `payload` on `channel` when the session's transaction commits."""
    if len(payload.encode()) > MAX_PAYLOAD:
        raise ValueError("notification payload over 8000 bytes")
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )
        return
    url = bind.engine.url.render_as_string(hide_password=False)
    session.sync_session.info.setdefault(_PENDING, []).append((url, channel, payload))


@event.listens_for(Session, "after_commit")
def _deliver_local(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for url, channel, payload in pending or ():
        for listener in list(_local.get(url, ())):
            listener.dispatch(channel, payload)


@event.listens_for(Session, "after_rollback")
def _drop_local(session: Session) -> None:
    session.info.pop(_PENDING, None)


class Listener:
    """Calls the callbacks subscribed to a channel for each notification on it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.callbacks: dict[str, list[Callback]] = defaultdict(list)
        self.state_callbacks: list[StateCallback] = []
        self.live = False
        self._task: asyncio.Task[None] | None = None
        self._url = db.writer.url.render_as_string(hide_password=False)

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Subscribe before start() (channels are listened to at connection)."""
        self.callbacks[channel].append(callback)

    def on_state(self, callback: StateCallback) -> None:
        self.state_callbacks.append(callback)

    def dispatch(self, channel: str, payload: str) -> None:
        for callback in self.callbacks.get(channel, ()):
            try:
                callback(payload)
            except Exception:  # one bad callback must not silence the others
                log.exception("notification callback failed on %s", channel)

    def _set_live(self, live: bool) -> None:
        self.live = live
        for callback in self.state_callbacks:
            callback(live)

    async def start(self) -> None:
        if self.db.is_sqlite:
            _local[self._url].add(self)
            self._set_live(True)
            return
        self._task = asyncio.create_task(self._run(), name="clarion-listener")

    async def stop(self) -> None:
        _local.get(self._url, set()).discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.live = False

    def _connect_params(self) -> dict[str, Any]:
        # The parameters SQLAlchemy itself uses for this URL (host, ssl, ...).
        _args, params = self.db.writer.dialect.create_connect_args(self.db.writer.url)
        for dialect_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            params.pop(dialect_only, None)
        return dict(params)

    async def _run(self) -> None:
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(**self._connect_params(), timeout=10)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for channel in self.callbacks:
                    await conn.add_listener(channel, self._on_notification)
                self._set_live(True)
                while not lost.is_set() and not conn.is_closed():
                    # Also notices a connection that died without telling us.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 30)
                    if not lost.is_set():
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "notification listener lost its connection; reconnecting", exc_info=True
                )
            finally:
                if self.live:
                    self._set_live(False)
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(RECONNECT_SECONDS)

    def _on_notification(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.dispatch(channel, payload)
