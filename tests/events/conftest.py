"""Event stream fixtures: app instances served by uvicorn on real sockets (each with its own
connection pools, like separate processes), and a reader of server-sent events."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from clarion.app import create_app
from clarion.config import Settings
from clarion.db.session import Database
from tests.campaigns.conftest import world  # noqa: F401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sse:
    """One open event stream, parsed by a reader task (a timed-out wait must not cancel the
    read of the stream itself)."""

    response: httpx.Response
    events: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    comments: list[str] = field(default_factory=list)

    async def read(self) -> None:
        event: dict[str, Any] = {}
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if data:
                        event["data"] = json.loads("\n".join(data))
                        await self.events.put(event)
                    event, data = {}, []
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    elif name in ("id", "event"):
                        event[name] = value
        finally:
            await self.events.put(None)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event: {"id", "event", "data"}."""
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event is None:
            raise AssertionError("stream ended")
        return event

    async def events_for(self, seconds: float) -> list[dict[str, Any]]:
        """Every event that arrives within `seconds`."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                out.append(await self.next(timeout=left))
            except TimeoutError:
                break
        return out


@dataclass
class Instance:
    url: str
    client: httpx.AsyncClient

    @contextlib.asynccontextmanager
    async def stream(self, path: str, key: str, **headers: str) -> AsyncIterator[Sse]:
        async with self.client.stream(
            "GET", path, headers={"Authorization": f"Bearer {key}", **headers}, timeout=None
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            sse = Sse(response)
            reader = asyncio.create_task(sse.read())
            try:
                yield sse
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await reader


@pytest.fixture
async def instances(settings: Settings, db: Database) -> AsyncIterator[list[Instance]]:
    """Two app instances on one database, each with its own pools and event feed."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None], Database]] = []
    out: list[Instance] = []
    for _ in range(2):
        own = Database(settings.database_url)
        app = create_app(settings.model_copy(update={"events_keepalive_seconds": 0.5}), db=own)
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        servers.append((server, task, own))
        url = f"http://127.0.0.1:{port}"
        out.append(Instance(url, httpx.AsyncClient(base_url=url, timeout=10)))
    yield out
    for inst in out:
        await inst.client.aclose()
    for server, task, own in servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await own.dispose()
