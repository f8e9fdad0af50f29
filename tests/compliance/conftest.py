"""Compliance fixtures: a clock that runs at real speed from a chosen instant (and can be
moved), and HTTP helpers that run campaigns through the embedded engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import AccountClient, Api

ENGINE = {
    "sender_enabled": True,
    "scheduler_interval": 0.05,
    "engine_idle_seconds": 0.5,
    "simulator_receipt_delay": 0.05,
}
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MovingClock:
    """Runs at real speed from `start`; `jump` sets it to another instant."""

    def __init__(self, start: datetime) -> None:
        self.jump(start)

    def jump(self, to: datetime) -> None:
        self._base, self._t0 = to, time.monotonic()

    def __call__(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._t0)


async def rates(api: Api) -> None:
    rows = [
        {"channel": "sms", "country": "*", "price": 0.05},
    ]
    r = await api.admin("PUT", "/admin/rates", json={"rates": rows})
    assert r.status_code in (200, 204), r.text


async def audience(account: AccountClient, contacts: list[dict[str, Any]]) -> tuple[int, list[int]]:
    r = await account.post("/lists", json={"name": "people"})
    assert r.status_code == 201, r.text
    list_id = r.json()["id"]
    ids = []
    for contact in contacts:
        r = await account.post("/contacts", json=contact)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await account.post(f"/lists/{list_id}/contacts", json={"contactIds": ids})
    assert r.status_code == 200, r.text
    return list_id, ids


async def campaign(account: AccountClient, list_id: int, **fields: Any) -> int:
    body = {"name": "c", "channel": "sms", "message": {"text": "Hi"}, "listIds": [list_id]}
    r = await account.post("/campaigns", json={**body, **fields})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await account.put(f"/campaigns/{cid}/confirm", json={})
    assert r.status_code == 200, r.text
    return int(cid)


async def messages(account: AccountClient, cid: int) -> list[dict[str, Any]]:
    r = await account.get(f"/campaigns/{cid}/messages", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda m: m["phone"])


async def wait_for(
    account: AccountClient,
    cid: int,
    done: Callable[[list[dict[str, Any]], dict[str, Any]], bool],
    seconds: float = 20,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        items = await messages(account, cid)
        body = (await account.get(f"/campaigns/{cid}")).json()
        if done(items, body):
            return items, body
        if time.monotonic() > deadline:
            raise AssertionError(f"not there in {seconds} s: {body['status']} {items}")
        await asyncio.sleep(0.05)
