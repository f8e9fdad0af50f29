"""API keys, the admin token, and the dependencies that resolve them."""

import hashlib
import hmac
import secrets
import time
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from clarion.accounts.models import ApiKey, SystemSetting
from clarion.db.session import Database
from clarion.errors import BadRequest, Unauthorized

API_KEY_PREFIX = "clk_"
ADMIN_TOKEN_SETTING = "admin_token_sha256"
# A verified key is remembered this long per process: a revocation made by another process
# takes effect within this delay (in the revoking process, at once).
KEY_CACHE_SECONDS = 10.0


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _bearer(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        # Proxies and frameworks disagree on which of two wins: refuse rather than guess.
        raise BadRequest("Send one Authorization header, not several.")
    header = values[0] if values else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <api key>'.")
    return token.strip()


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def ensure_admin_token(db: Database, configured: str | None) -> str | None:
    """Make sure an admin token exists. Returns a newly generated token (to print once), or
    None when one was configured or generated before."""
    if configured:
        return None
    async with db.transaction() as session:
        existing = await session.get(SystemSetting, ADMIN_TOKEN_SETTING)
        if existing is not None:
            return None
        token = "cla_" + secrets.token_urlsafe(32)
        session.add(SystemSetting(key=ADMIN_TOKEN_SETTING, value=hash_secret(token)))
        return token


async def reset_admin_token(db: Database) -> str:
    """Replace the stored admin token with a new one (returned, to print once): the way
    back in when the token printed at first start is lost."""
    token = "cla_" + secrets.token_urlsafe(32)
    async with db.transaction() as session:
        await session.merge(SystemSetting(key=ADMIN_TOKEN_SETTING, value=hash_secret(token)))
    return token


async def _check_admin(request: Request) -> None:
    token = _bearer(request)
    configured: str | None = request.app.state.settings.admin_token
    if configured:
        if hmac.compare_digest(token.encode(), configured.encode()):
            return
        raise Unauthorized("Wrong admin token.")
    db = get_db(request)
    async with db.session(write=False) as session:
        stored = await session.get(SystemSetting, ADMIN_TOKEN_SETTING)
    if stored is not None and hmac.compare_digest(hash_secret(token), stored.value):
        return
    raise Unauthorized("Wrong admin token.")


KeyCache = dict[str, tuple[int, float]]
"""sha256 of an API key -> (account id, monotonic time until which it is trusted)."""


def cached_account_id(cache: KeyCache, key_hash: str, now: float) -> int | None:
    hit = cache.get(key_hash)
    if hit is not None and hit[1] > now:
        return hit[0]
    return None


async def _current_account_id(request: Request) -> int:
    key = _bearer(request)
    cache: KeyCache = request.app.state.key_cache
    key_hash = hash_secret(key)
    now = time.monotonic()
    hit = cached_account_id(cache, key_hash, now)
    if hit is not None:
        return hit
    async with get_db(request).session(write=False) as session:
        row = await session.execute(
            select(ApiKey.account_id).where(
                ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
            )
        )
        found = row.scalar_one_or_none()
    if found is None:
        raise Unauthorized("Unknown or revoked API key.")
    if len(cache) > 10_000:
        cache.clear()
    cache[key_hash] = (found, now + KEY_CACHE_SECONDS)
    return found


AdminDep = Depends(_check_admin)
CurrentAccountId = Annotated[int, Depends(_current_account_id)]
"""The id of the account whose API key signed the request."""
