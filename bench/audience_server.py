"""Helpers of the audience benches: a real `clarion serve --no-sender` subprocess and /proc
readings (peak RSS, CPU time)."""

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg

ADMIN_TOKEN = "bench-admin-token"
PG_ADMIN_DSN = os.environ.get(
    "CLARION_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found.append(child)
            found.extend(descendants(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time of these processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def start_server(
    url: str, port: int, workdir: Path, env_extra: dict[str, str] | None = None
) -> "subprocess.Popen[bytes]":
    """`clarion serve --no-sender` on this database and port (its log in `workdir`)."""
    env = {
        **os.environ,
        "CLARION_DATABASE_URL": url,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        "TMPDIR": str(workdir),
        **(env_extra or {}),
    }
    clarion = str(Path(sys.executable).with_name("clarion"))
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [clarion, "serve", "--no-sender", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def stop_server(proc: "subprocess.Popen[bytes]") -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                with open(proc.log_path) as f:  # type: ignore[attr-defined]  # noqa: ASYNC230
                    log = f.read()[-3000:]
                raise RuntimeError(f"the server exited at start:\n{log}")
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def served(
    backend: str, workdir: Path
) -> AsyncIterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """A `clarion serve --no-sender` on a fresh database of `backend` ("sqlite" or
    "postgresql"): yields (base URL, server process); stops it and drops the database after."""
    pg_name = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    else:
        pg_name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
        await _pg(f'CREATE DATABASE "{pg_name}"')
        url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{pg_name}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(url, port, workdir)
    try:
        await wait_ready(base, proc)
        yield base, proc
    finally:
        stop_server(proc)
        if pg_name is not None:
            await _pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
