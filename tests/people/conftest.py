"""People fixtures: an app with a clock the test moves, and signed-in browsers (an HTTP
client with its own cookie jar that echoes the CSRF cookie on writes, as the console does)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from clarion.db.base import utcnow
from tests.conftest import AccountClient, Api, AppFactory

PASSWORD = "correct horse battery"


@dataclass
class FakeClock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(make_api: AppFactory, clock: FakeClock) -> Api:
    return await make_api(clock=clock)


@dataclass
class Browser:
    """One person's cookie jar on the app."""

    client: httpx.AsyncClient
    csrf: bool = True  # send X-CSRF-Token on writes

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        token = self.client.cookies.get("clarion_csrf")
        if self.csrf and method.upper() not in ("GET", "HEAD", "OPTIONS") and token:
            headers.setdefault("X-CSRF-Token", token)
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/auth/login", json={"email": email, "password": password})


@pytest.fixture
async def browsers(api: Api) -> AsyncIterator[Any]:
    opened: list[httpx.AsyncClient] = []

    def new() -> Browser:
        client = httpx.AsyncClient(transport=api.client._transport, base_url="http://clarion.test")
        opened.append(client)
        return Browser(client)

    yield new
    for client in opened:
        await client.aclose()


async def add_user(
    api: Api, account: AccountClient, email: str, role: str, password: str = PASSWORD
) -> dict[str, Any]:
    r = await api.admin(
        "POST",
        f"/admin/accounts/{account.id}/users",
        json={"email": email, "password": password, "role": role, "name": email.split("@")[0]},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def signed_in(api: Api, account: AccountClient, browsers: Any) -> Any:
    """sign_in(role) -> a Browser signed in as a new user of `account` with that role."""
    count = 0

    async def sign_in(role: str, email: str | None = None) -> Browser:
        nonlocal count
        count += 1
        email = email or f"{role}{count}@example.com"
        await add_user(api, account, email, role)
        browser: Browser = browsers()
        r = await browser.login(email)
        assert r.status_code == 200, r.text
        return browser

    return sign_in
