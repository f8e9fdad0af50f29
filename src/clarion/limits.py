"""Reject what no route can take before it reaches one: request bodies over the configured
size (413) before they are read in full, and URLs carrying the NUL character (422)."""

import re
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing re-raises it as is (not as a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")


# Streamed uploads get their own, larger limit (`max_import_bytes`).
UPLOAD_PATHS = re.compile(r"^/lists/[^/]+/imports/?$")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = (
            self.upload_max_bytes
            if UPLOAD_PATHS.match(scope.get("path", ""))
            else self.default_max_bytes
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await self._reject(send, max_bytes)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, max_bytes)

    async def _reject(self, send: Send, max_bytes: int) -> None:
        detail = f"The request body exceeds {max_bytes} bytes."
        await _send_problem(send, 413, "Payload too large", detail)


async def _send_problem(send: Send, status: int, title: str, detail: str, **extra: Any) -> None:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class NoNulInUrl:
    """A path or query string with U+0000 (`%00`) is refused with a 422 problem: PostgreSQL
    text cannot hold it, and no id, filter or search term needs it. (JSON bodies are checked
    by the request models, see `schemas.CamelModel`.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", "")
        ):
            where = "query" if b"%00" in scope.get("query_string", b"") else "path"
            detail = f"The {where} must not contain the NUL character (U+0000)."
            errors = [{"field": where, "message": detail}]
            await _send_problem(send, 422, "Validation failed", detail, errors=errors)
            return
        await self.app(scope, receive, send)
