"""Login sessions: cookies, expiry, CSRF.

The session cookie (`clarion_session`, HttpOnly) carries a random token; the CSRF cookie
(`clarion_csrf`, readable by the console's scripts) carries another, which every request
that is not GET/HEAD/OPTIONS must echo in `X-CSRF-Token`: a page on another site can make
the browser send the cookies, but cannot read them to set the header. Only the SHA-256 of
each token is stored.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.db.session import Database
from clarion.people import repository
from clarion.people.models import User, UserSession

SESSION_COOKIE = "clarion_session"
CSRF_COOKIE = "clarion_csrf"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# last_seen_at is written at most this often per session: the idle limit is 12 h, so a
# minute of slack costs nothing and spares a write on every request.
TOUCH_EVERY = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    row: UserSession
    token: str
    csrf: str


async def start(session: AsyncSession, user: User, now: datetime) -> NewSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        token_hash=_digest(token),
        csrf_hash=_digest(csrf),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    await session.flush()
    return NewSession(row, token, csrf)


def set_cookies(request: Request, response: Response, new: NewSession) -> None:
    secure = request.url.scheme == "https"
    max_age = int(ABSOLUTE.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE,
        new.csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="lax",
        secure=secure,
    )


def clear_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="lax")


def expired(row: UserSession, now: datetime) -> bool:
    return now - row.last_seen_at >= IDLE or now - row.created_at >= ABSOLUTE


def csrf_ok(request: Request, row: UserSession) -> bool:
    """The header equals the CSRF cookie, and both are this session's token."""
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not header or not hmac.compare_digest(header.encode(), cookie.encode()):
        return False
    return hmac.compare_digest(_digest(header), row.csrf_hash)


async def resolve(db: Database, token: str, now: datetime) -> tuple[UserSession, User] | None:
    """The live session and its user for a cookie token, or None. An expired session is
    deleted; a live one has its last request time moved (at most once a minute)."""
    token_hash = _digest(token)
    async with db.session(write=False) as session:
        found = await repository.session_with_user(session, token_hash)
    if found is None:
        return None
    row, user = found
    if expired(row, now):
        async with db.transaction() as session:
            await repository.end_session(session, row.id)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        async with db.transaction() as session:
            live = await session.get(UserSession, row.id)
            if live is not None:
                live.last_seen_at = now
    return row, user
