"""A lost admin token is recovered with `clarion reset-admin-token`."""

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import AppFactory

CLARION = str(Path(sys.executable).with_name("clarion"))


async def reset(database_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARION_")}
    proc = await asyncio.create_subprocess_exec(
        CLARION,
        "reset-admin-token",
        env={**env, "CLARION_DATABASE_URL": database_url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, out.decode()
    return out.decode().rsplit(":", 1)[1].strip()


async def test_reset_prints_a_token_that_works_and_retires_the_old_one(
    make_api: AppFactory, database_url: str
) -> None:
    first = await reset(database_url)
    second = await reset(database_url)
    assert first.startswith("cla_") and second.startswith("cla_") and first != second
    api = await make_api(admin_token=None)
    ok = await api.client.get("/admin/accounts", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200, ok.text
    old = await api.client.get("/admin/accounts", headers={"Authorization": f"Bearer {first}"})
    assert old.status_code == 401
