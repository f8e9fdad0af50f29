"""Log lines and what they know about the work in hand.

`CLARION_LOG_FORMAT=json` writes one JSON object per line (time, level, logger, message, and
request id, account id and campaign id where known); the default stays human-readable.

What a line knows comes from a context variable holding a small dict: the request-id
middleware opens one per request, authentication adds the account id to it, the engine opens
one per campaign it works on (`context(campaign_id=...)`). The dict is mutated in place, so an
account id bound deep in a dependency is still seen by the middleware's access line (the
request may run in a task of its own, which copies the variable but shares the dict).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# What a caller's request id may be (anything else is replaced by one of ours): what trace
# and request ids look like (UUIDs, ULIDs, hex, dotted or dashed), short enough for a log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
FIELDS = ("request_id", "account_id", "campaign_id")

_context: ContextVar[dict[str, Any] | None] = ContextVar("clarion_log_context", default=None)
access_log = logging.getLogger("clarion.access")


def bind(**fields: Any) -> None:
    """Add fields to the current context (a request's, a campaign's); no-op outside one."""
    current = _context.get()
    if current is not None:
        current.update(fields)


def current() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextmanager
def context(**fields: Any) -> Iterator[dict[str, Any]]:
    """A context of its own for the block, starting from the enclosing one."""
    fresh = {**(_context.get() or {}), **fields}
    token = _context.set(fresh)
    try:
        yield fresh
    finally:
        _context.reset(token)


def request_id_from(given: str | None) -> str:
    """The caller's request id when it is acceptable, else a new one."""
    if given and REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for name in FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value is not None:
                line[name] = value
        for name, value in getattr(record, "fields", {}).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class ContextFilter(logging.Filter):
    """Puts the context's fields on the record, for human-readable formats to use."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get() or {}
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's lines to stderr in the chosen format (`text` or `json`);
    uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True


class RequestIdMiddleware:
    """Gives every HTTP request an id (the caller's `X-Request-ID` when acceptable, else a
    new one), keeps it in the log context and echoes it in the response's `X-Request-ID`.
    With `log_requests`, writes one access line per request (with the account id once
    authentication found it), in place of the server's own."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = request_id_from(given)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        with context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.log_requests:
                    access_log.info(
                        "%s %s %d",
                        scope.get("method"),
                        scope.get("path"),
                        status,
                        extra={
                            "fields": {
                                "method": scope.get("method"),
                                "path": scope.get("path"),
                                "status": status,
                                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                            }
                        },
                    )
