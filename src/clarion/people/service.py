"""Rules about users: creation, edits (the last owner stays), deletion, login.

Functions run in the caller's transaction and only flush, except `login`, which owns its
transactions: a failed attempt must be counted even though the request fails.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts.models import Account
from clarion.auth import Principal
from clarion.db.session import Database
from clarion.errors import Conflict, NotFound, RoleRequired, TooManyRequests, Unauthorized
from clarion.people import passwords, repository, sessions
from clarion.people.models import User
from clarion.people.schemas import UserCreate, UserUpdate
from clarion.roles import OWNER

THROTTLE_FAILURES = 10
THROTTLE_WINDOW = timedelta(minutes=15)
_BAD_LOGIN = "Wrong email or password."


class EmailTaken(Conflict):
    title = "Email already used"


class LastOwner(Conflict):
    title = "Last owner"


def email_key(email: str) -> str:
    return email.strip().lower()


async def require_user(
    session: AsyncSession, account_id: int, user_id: int, *, for_update: bool = False
) -> User:
    user = await repository.user_of(session, account_id, user_id, for_update=for_update)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return user


async def create_user(
    session: AsyncSession, account_id: int, body: UserCreate, now: datetime
) -> User:
    if await session.get(Account, account_id) is None:
        raise NotFound(f"Account {account_id} not found.")
    key = email_key(body.email)
    if await repository.user_by_email(session, key) is not None:
        raise EmailTaken(f"A user with the email {body.email} already exists.")
    user = User(
        account_id=account_id,
        email=body.email.strip(),
        email_key=key,
        name=body.name,
        role=body.role,
        password_hash=await passwords.hash_password(body.password),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same email created at the same instant
        raise EmailTaken(f"A user with the email {body.email} already exists.") from None
    return user


async def _keep_an_owner(session: AsyncSession, user: User) -> None:
    """409 when `user` is the account's only owner (it is about to stop being one)."""
    owners = await repository.owners_locked(session, user.account_id)
    if owners == [user.id]:
        raise LastOwner("The account's last owner cannot be demoted or deleted.")


async def update_user(
    session: AsyncSession, caller: Principal, user_id: int, body: UserUpdate
) -> tuple[User, dict[str, object]]:
    """Apply a partial update; returns the user and what changed (for the audit trail)."""
    user = await require_user(session, caller.account_id, user_id, for_update=True)
    given = body.model_fields_set
    own = caller.kind == "user" and caller.id == user.id
    is_owner = caller.role == OWNER
    if not is_owner and (not own or "role" in given):
        raise RoleRequired(OWNER, "Only an owner may change another user or a role.")
    changed: dict[str, object] = {}
    if "name" in given and body.name != user.name:
        user.name = body.name
        changed["name"] = body.name
    if "role" in given and body.role is not None and body.role != user.role:
        if user.role == OWNER:
            await _keep_an_owner(session, user)
        changed["role"] = {"from": user.role, "to": body.role}
        user.role = body.role
    if "password" in given and body.password is not None:
        if own and (
            body.current_password is None
            or not await passwords.verify_password(user.password_hash, body.current_password)
        ):
            raise Unauthorized("To change your password, give your current one in currentPassword.")
        user.password_hash = await passwords.hash_password(body.password)
        changed["password"] = "changed"
        # Every other session of the user ends; the caller's own stays.
        await repository.end_sessions(
            session, user.id, keep_session_id=caller.session_id if own else None
        )
    await session.flush()
    return user, changed


async def delete_user(session: AsyncSession, account_id: int, user_id: int) -> User:
    user = await require_user(session, account_id, user_id, for_update=True)
    if user.role == OWNER:
        await _keep_an_owner(session, user)
    await repository.end_sessions(session, user.id)
    await session.delete(user)
    await session.flush()
    return user


@dataclass(frozen=True)
class LoggedIn:
    user: User
    account: Account
    new: sessions.NewSession


def _retry_after(started: datetime, now: datetime) -> int:
    return max(1, math.ceil((started + THROTTLE_WINDOW - now).total_seconds()))


async def _throttled(session: AsyncSession, key: str, now: datetime) -> None:
    row = await repository.throttle_of(session, key)
    if row is None or row.failures < THROTTLE_FAILURES:
        return
    if row.window_started_at + THROTTLE_WINDOW <= now:
        return
    raise TooManyRequests(
        f"Too many failed logins for this email: try again in "
        f"{_retry_after(row.window_started_at, now)} seconds.",
        retry_after=_retry_after(row.window_started_at, now),
    )


async def login(db: Database, email: str, password: str, now: datetime) -> LoggedIn:
    """Check the password and open a session. Unknown email and wrong password are the same
    401 (and cost the same time); after THROTTLE_FAILURES failures for one email within
    THROTTLE_WINDOW every attempt is 429 until the window ends, right password or not."""
    key = email_key(email)
    async with db.session(write=False) as session:
        await _throttled(session, key, now)
        user = await repository.user_by_email(session, key)
    ok = await passwords.verify_password(user.password_hash if user else None, password)
    failed = False
    async with db.transaction() as session:
        # Checked again inside the write: attempts racing past the first check still stop.
        await _throttled(session, key, now)
        user = await repository.user_by_email(session, key) if ok else None
        if user is None:
            await repository.count_failure(session, key, now, now - THROTTLE_WINDOW)
            failed = True
        else:
            await repository.clear_failures(session, key)
            user.last_login_at = now
            new = await sessions.start(session, user, now)
            account = await session.get(Account, user.account_id)
    if failed:
        raise Unauthorized(_BAD_LOGIN)
    assert user is not None and account is not None
    return LoggedIn(user, account, new)
