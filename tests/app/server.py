"""A real `clarion serve` process on a free port, for tests that need sockets and signals."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CLARION = str(Path(sys.executable).with_name("clarion"))
ADMIN_TOKEN = "serve-test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    process: "subprocess.Popen[bytes]"
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(database_url: str, tmp_path: Path, *args: str, **env: str) -> Iterator[Served]:
    """`clarion serve --no-sender` on `database_url`; killed at the end if still alive."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLARION_")},
        "CLARION_DATABASE_URL": database_url,
        "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CLARION, "serve", "--no-sender", "--port", str(port), *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "clarion serve did not start"
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
