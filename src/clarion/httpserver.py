"""The HTTP protocol `clarion serve` runs: uvicorn's httptools protocol with guards against
slow and greedy clients, which uvicorn itself does not have.

- **Header timeout**: a connection must deliver a request's complete headers within
  `header_timeout` seconds of opening (or of the request's first byte on a kept-alive
  connection), else it is closed. Without it, a client sending one header line every few
  seconds holds its connection (and a file descriptor) for ever.
- **Connection cap**: at most `max_connections` open connections. A new one beyond the cap
  takes the place of the connection that has waited longest without a request in progress
  (headers not complete yet, or idle between two requests); only when every connection is
  serving a request is the newcomer closed. So clients holding connections open cannot lock
  out a health check or a real client; they only lose their own connections.
- **Header size**: a request whose headers exceed `max_header_bytes` is answered 431.

The listen backlog and the keep-alive timeout are uvicorn's own settings (see `clarion
serve`). In production, put a reverse proxy in front anyway (README, "Production").
"""

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from clarion.config import Settings

LINGER_SECONDS = 2.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._waiting_since = time.monotonic()
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._discarding = False  # refused: what still arrives is dropped

    # -- connection --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _idle(self) -> bool:
        """Not serving a request: its headers are incomplete, or it sits between requests."""
        if self._awaiting_headers:
            return True
        cycle = self.cycle
        return (cycle is None or cycle.response_complete) and not self.pipeline

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest without a request in progress."""
        victims = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedHttpToolsProtocol)
            and c.transport is not None
            and not c.transport.is_closing()
            and c._idle()
        ]
        if not victims:
            return False
        victim = min(victims, key=lambda c: c._waiting_since)
        victim.transport.close()
        self.connections.discard(victim)
        return True

    # -- header timeout and size -------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if (
            self._awaiting_headers
            and self._header_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_headers()

    def _refuse_headers(self) -> None:
        """431, then a lingering close: the client is likely still sending, and closing a
        socket with unread input resets it, which can destroy the answer before the client
        reads it. So: answer, send FIN, drop what still arrives, close a moment later."""
        self._discarding = True
        self._cancel_header_timer()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: 0\r\n"
            b"connection: close\r\n\r\n"
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting_headers:
            self._awaiting_headers = True
            self._waiting_since = time.monotonic()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._waiting_since = time.monotonic()  # idle from now on, until the next request
        super().on_response_complete()


def protocol_class(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The guarded protocol with this configuration's limits."""
    return type(
        "ClarionHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": settings.http_header_timeout,
            "max_connections": settings.http_max_connections,
            "max_header_bytes": settings.http_max_header_bytes,
        },
    )
