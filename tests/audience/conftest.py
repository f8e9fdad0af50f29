"""Fixtures of the audience tests."""

import asyncio
from typing import Any

import httpx

from tests.conftest import AccountClient

FR = "+33612345678"
US = "+16502530000"
GB = "+447911123456"


async def new_list(account: AccountClient, name: str = "customers") -> int:
    r = await account.post("/lists", json={"name": name})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def new_contact(account: AccountClient, phone: str = FR, **fields: Any) -> dict[str, Any]:
    r = await account.post("/contacts", json={"phone": phone, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def upload(
    account: AccountClient,
    list_id: int,
    content: bytes,
    *,
    default_country: str | None = None,
    filename: str = "contacts.csv",
) -> httpx.Response:
    data = {"defaultCountry": default_country} if default_country else None
    return await account.post(
        f"/lists/{list_id}/imports",
        files={"file": (filename, content, "text/csv")},
        data=data,
    )


async def wait_import(account: AccountClient, import_id: int) -> dict[str, Any]:
    """Poll until the import leaves `running` (bounded: 30 s)."""
    for _ in range(600):
        r = await account.get(f"/imports/{import_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] != "running":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {import_id} still running")


async def import_csv(
    account: AccountClient, list_id: int, content: bytes, **kwargs: Any
) -> dict[str, Any]:
    r = await upload(account, list_id, content, **kwargs)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running"
    return await wait_import(account, r.json()["id"])
