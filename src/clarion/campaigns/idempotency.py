"""Idempotency-Key: the first successful answer to a request is kept for 24 h and replayed.

- Same key, same scope (method + path), same body (compared as canonical JSON) within 24 h:
  the stored status and body are replayed (header `Idempotent-Replayed: true`).
- Same key with another body: 422.
- Only successful (2xx) answers are stored. An error rolls back the whole request, claim
  included, so a retry after a 402 or 422 runs again (nothing had changed).
- Concurrent duplicates: the first request claims the key by inserting the record, in its
  own transaction, before acting. On PostgreSQL the unique index makes a concurrent insert of
  the same key wait until the first transaction ends; the duplicate then replays the first
  answer (or runs, if the first failed and rolled back). On SQLite write transactions are
  serialized (BEGIN IMMEDIATE), so the duplicate sees the committed record at once. A claim
  that is still unanswered when read (cannot happen with the above; kept as a guard) is 409.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import repository as accounts_repository
from clarion.accounts.models import IdempotencyRecord
from clarion.db.base import utcnow
from clarion.errors import Conflict, Unprocessable

TTL = timedelta(hours=24)
HEADER = "Idempotency-Key"
Action = Callable[[], Awaitable[tuple[int, Any]]]


def _body_hash(raw: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(raw or b"null"), sort_keys=True, separators=(",", ":"))
        data = canonical.encode()
    except ValueError:
        data = raw
    return hashlib.sha256(data).hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str) -> JSONResponse:
    if record.request_hash != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.",
            field=HEADER,
        )
    if record.status_code == 0:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return JSONResponse(
        json.loads(record.response_body),
        status_code=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


async def idempotent(
    session: AsyncSession,
    account_id: int,
    request: Request,
    key: str | None,
    action: Action,
) -> JSONResponse:
    """Run `action` (returning status and JSON body) at most once per Idempotency-Key."""
    if key is None:
        status, body = await action()
        return JSONResponse(body, status_code=status)
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Unprocessable("Idempotency-Key must be 1 to 255 printable characters.", field=HEADER)
    scope = f"{request.method} {request.url.path}"
    request_hash = _body_hash(await request.body())
    now = utcnow()
    existing = await accounts_repository.idempotency_record(session, account_id, scope, key)
    if existing is not None and existing.created_at <= now - TTL:
        await accounts_repository.delete_idempotency_record(session, existing.id)
        existing = None
    if existing is not None:
        return _replay(existing, request_hash)
    record = IdempotencyRecord(
        account_id=account_id,
        key=key,
        scope=scope,
        request_hash=request_hash,
        status_code=0,
        response_body="",
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        # A concurrent duplicate committed first (we waited for it): answer as it did.
        winner = await accounts_repository.idempotency_record(session, account_id, scope, key)
        if winner is None:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed."
            ) from None
        return _replay(winner, request_hash)
    status, body = await action()
    record.status_code = status
    record.response_body = json.dumps(body)
    await session.flush()
    return JSONResponse(body, status_code=status)
