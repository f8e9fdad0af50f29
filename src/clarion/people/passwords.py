"""Password hashing with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes).

Hashing costs tens of milliseconds of CPU on purpose, so it runs in a worker thread and never
holds the event loop (or a database transaction) while it works.
"""

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10

_hasher = PasswordHasher()  # argon2id
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with `stored` None (no such user) it does the
    same work and answers False."""
    return await asyncio.to_thread(_verify, stored, password)
