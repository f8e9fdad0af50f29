"""Who is calling, and may they: API keys, login sessions, the admin token.

`CurrentPrincipal` (and `CurrentAccountId`, which every account endpoint takes) resolves
the caller from `Authorization: Bearer <api key>` or, without that header, from the session
cookie (checking the CSRF header on writes), then checks the caller's role against the
route's: the role a route declares with `roles.requires(...)`, else viewer for GET and
editor for anything else. This is the only place roles are checked against routes.
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy import select

from clarion import logs, metrics, roles
from clarion.accounts.models import ApiKey, SystemSetting
from clarion.db.session import Database
from clarion.errors import BadRequest, Forbidden, NotFound, RoleRequired, Unauthorized
from clarion.people import sessions

API_KEY_PREFIX = "clk_"
ADMIN_TOKEN_SETTING = "admin_token_sha256"
# A verified key is remembered this long per process. A revocation reaches every process's
# cache at once through the `api_key_revoked` notification channel (db.notify); while a
# process is not listening (its listener connection is down), it trusts a key for only
# KEY_CACHE_UNSURE_SECONDS, so a revocation still takes effect within a second.
KEY_CACHE_SECONDS = 10.0
KEY_CACHE_UNSURE_SECONDS = 0.9
KEY_REVOKED_CHANNEL = "api_key_revoked"
# Who signed the request, kept in the ASGI scope (request.state may be shared with the
# lifespan's state, so it is no place for anything per request).
PRINCIPAL_SCOPE_KEY = "clarion.principal"
ADMIN_SCOPE_KEY = "clarion.admin"


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
            request.scope[ADMIN_SCOPE_KEY] = True  # the audit trail's actor
            return
        raise Unauthorized("Wrong admin token.")
    db = get_db(request)
    async with db.session(write=False) as session:
        stored = await session.get(SystemSetting, ADMIN_TOKEN_SETTING)
    if stored is not None and hmac.compare_digest(hash_secret(token), stored.value):
        request.scope[ADMIN_SCOPE_KEY] = True
        return
    raise Unauthorized("Wrong admin token.")


async def _check_metrics_token(request: Request) -> None:
    """`GET /metrics` is open only to `Bearer {CLARION_METRICS_TOKEN}`; it does not exist
    while that setting is unset."""
    configured: str | None = request.app.state.settings.metrics_token
    if not configured:
        raise NotFound("Not found.")
    if not metrics.token_ok(configured, request.headers.get("authorization")):
        raise Unauthorized("Send 'Authorization: Bearer <CLARION_METRICS_TOKEN>'.")


@dataclass(frozen=True)
class CachedKey:
    account_id: int
    key_id: int
    name: str
    role: str


KeyCache = dict[str, tuple[CachedKey, float]]
"""sha256 of an API key -> (what it is, monotonic time until which it is trusted)."""


def cached_account_id(cache: KeyCache, key_hash: str, now: float) -> int | None:
    hit = cache.get(key_hash)
    if hit is not None and hit[1] > now:
        return hit[0].account_id
    return None


def forget_key(cache: KeyCache, key_hash: str) -> None:
    cache.pop(key_hash, None)


@dataclass(frozen=True)
class Principal:
    """Whoever signed the request: a user (by session) or an API key."""

    kind: Literal["user", "key"]
    id: int
    name: str
    account_id: int
    role: str
    email: str | None = None
    session_id: int | None = None


Clock = Callable[[], datetime]


def principal_of(request: Request) -> "Principal | None":
    """The caller once CurrentPrincipal resolved it, else None."""
    found: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    return found


def is_admin(request: Request) -> bool:
    return bool(request.scope.get(ADMIN_SCOPE_KEY))


def request_now(request: Request) -> datetime:
    """The current time as the app sees it (tests inject a clock)."""
    clock: Clock = request.app.state.clock
    return clock()


async def _key_principal(request: Request, key: str) -> Principal:
    cache: KeyCache = request.app.state.key_cache
    key_hash = hash_secret(key)
    now = time.monotonic()
    hit = cache.get(key_hash)
    if hit is not None and hit[1] > now:
        found = hit[0]
    else:
        async with get_db(request).session(write=False) as session:
            row = (
                await session.execute(
                    select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
                )
            ).scalar_one_or_none()
        if row is None:
            raise Unauthorized("Unknown or revoked API key.")
        found = CachedKey(row.account_id, row.id, row.name, row.role)
        if len(cache) > 10_000:
            cache.clear()
        sure = request.app.state.key_invalidation_live
        cache[key_hash] = (found, now + (KEY_CACHE_SECONDS if sure else KEY_CACHE_UNSURE_SECONDS))
    return Principal("key", found.key_id, found.name, found.account_id, found.role)


async def _session_principal(request: Request, token: str) -> Principal:
    found = await sessions.resolve(get_db(request), token, request_now(request))
    if found is None:
        raise Unauthorized("Your session has ended: sign in again.")
    row, user = found
    if request.method not in sessions.SAFE_METHODS and not sessions.csrf_ok(request, row):
        raise Forbidden(
            f"A request signed by the session cookie must carry {sessions.CSRF_HEADER} "
            f"equal to the {sessions.CSRF_COOKIE} cookie.",
            reason="csrf",
        )
    return Principal(
        "user", user.id, user.email, user.account_id, user.role, user.email, session_id=row.id
    )


def require_role(principal: Principal, required: str) -> None:
    """403 with `requiredRole` unless the caller's role includes `required`. The route's
    role is checked by CurrentPrincipal; this is for rules that depend on the data (editing
    a campaign that already holds credits needs more than editing a draft)."""
    if not roles.allows(principal.role, required):
        raise RoleRequired(required)


def _required_role(request: Request) -> str:
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(roles.REQUIRED_ROLE)
    return str(declared) if declared else roles.default_for(request.method)


async def _current_principal(request: Request) -> Principal:
    if "authorization" in request.headers:
        principal = await _key_principal(request, _bearer(request))
    elif token := request.cookies.get(sessions.SESSION_COOKIE):
        principal = await _session_principal(request, token)
    else:
        raise Unauthorized("Send 'Authorization: Bearer <api key>', or sign in (POST /auth/login).")
    request.scope[PRINCIPAL_SCOPE_KEY] = principal
    logs.bind(account_id=principal.account_id)
    require_role(principal, _required_role(request))
    return principal


async def _current_account_id(principal: Annotated[Principal, Depends(_current_principal)]) -> int:
    return principal.account_id


AdminDep = Depends(_check_admin)
MetricsTokenDep = Depends(_check_metrics_token)
CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
"""The caller, authenticated and allowed by the route's role."""
CurrentAccountId = Annotated[int, Depends(_current_account_id)]
"""The id of the caller's account (API key or session), once its role is checked."""
CURRENT_PRINCIPAL_CALL = _current_principal
ADMIN_CALL = _check_admin
METRICS_CALL = _check_metrics_token
"""The callables the OpenAPI document looks for in a route's dependencies."""
