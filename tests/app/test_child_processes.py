"""Killing `clarion serve` with SIGKILL leaves no CSV parsing worker behind."""

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.app.server import ADMIN_TOKEN, alive, children_of, serving

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_parse_workers_die_with_a_killed_server(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, CLARION_IMPORT_WORKERS="1") as served:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=served.base, timeout=30) as client:
            r = client.post("/admin/accounts", json={"name": "kill"}, headers=admin)
            key = {"Authorization": f"Bearer {r.json()['apiKey']}"}
            list_id = client.post("/lists", json={"name": "l"}, headers=key).json()["id"]
            r = client.post(
                f"/lists/{list_id}/imports",
                files={"file": ("c.csv", b"phone\n+33612345678\n", "text/csv")},
                headers=key,
            )
            assert r.status_code == 202, r.text
            import_id = r.json()["id"]
            deadline = time.monotonic() + 60
            while client.get(f"/imports/{import_id}", headers=key).json()["status"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        workers = children_of(served.process.pid)
        assert workers, "the import ran without a parsing process"
        os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, [p for p in workers if alive(p)]
            time.sleep(0.05)
