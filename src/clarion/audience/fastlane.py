"""GET /contacts/{id} answered before the framework, when nothing can go wrong.

FastAPI's routing, dependency solving and middleware stack cost more CPU per request than the
contact lookup itself (measured with py-spy under `bench/contacts_get.py`). This ASGI layer
answers the one case that dominates the traffic of a read-heavy client: a GET of a contact
id, signed with an API key this process verified in the last few seconds, that exists. It
answers with the very bytes the FastAPI route would (`hotpath.contact_json`).

Anything else — no or unknown key, an id out of range, a contact that is not there, any
error — goes on to the FastAPI route, which answers it (problem documents included) and
remains the documented operation in the OpenAPI schema.
"""

import logging
import re
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from clarion.audience import hotpath
from clarion.auth import cached_account_id, hash_secret
from clarion.schemas import MAX_ID

log = logging.getLogger(__name__)

_PATH = re.compile(r"/contacts/([1-9][0-9]{0,18})")
_HEADERS = [(b"content-type", b"application/json")]


class ContactReadFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = await self._answer(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> bytes | None:
        """The response body, or None to let the route answer."""
        match = _PATH.fullmatch(scope["path"])
        if match is None or scope.get("query_string"):
            return None
        contact_id = int(match.group(1))
        if contact_id > MAX_ID:
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None  # two Authorization headers: the route refuses them
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
        if not token or not token.strip():
            return None
        app = scope["app"]
        account_id = cached_account_id(
            app.state.key_cache, hash_secret(token.strip()), time.monotonic()
        )
        if account_id is None:
            return None
        try:
            return await hotpath.contact_json(app.state.db, account_id, contact_id)
        except Exception:  # the route will meet the same trouble and answer it properly
            log.debug("fast lane gave way", exc_info=True)
            return None
