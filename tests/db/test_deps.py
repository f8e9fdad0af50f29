"""The request owns its transaction, and commits it before the response leaves: a client
that has its answer can read what it wrote, through any other connection or process."""

from typing import Any

import orjson
from sqlalchemy import select

from clarion.app import create_app
from clarion.audience.models import ContactList
from clarion.config import Settings
from clarion.db.session import Database
from tests.conftest import ADMIN_TOKEN


class TestCommitBeforeResponse:
    async def test_a_created_list_is_visible_when_the_response_starts(
        self, settings: Settings, db: Database
    ) -> None:
        app = create_app(settings, db=db)
        seen_at_response: list[bool] = []

        async def call(method: str, path: str, body: Any, key: str) -> dict[str, Any]:
            """One request straight through ASGI; at the first byte of the answer, look
            for the list from another connection."""
            payload = orjson.dumps(body)
            sent = False
            chunks: list[bytes] = []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start" and path == "/lists":
                    async with db.session(write=False) as other:
                        found = await other.scalar(select(ContactList.id).limit(1))
                    seen_at_response.append(found is not None)
                if message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"host", b"clarion.test"),
                    (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {key}".encode()),
                ],
                "client": ("127.0.0.1", 1234),
                "server": ("clarion.test", 80),
            }
            await app(scope, receive, send)
            return dict(orjson.loads(b"".join(chunks)))

        account = await call("POST", "/admin/accounts", {"name": "acme"}, ADMIN_TOKEN)
        created = await call("POST", "/lists", {"name": "vip"}, account["apiKey"])
        assert created["name"] == "vip"
        assert seen_at_response == [True]
