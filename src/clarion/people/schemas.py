from pydantic import Field, field_validator

from clarion.accounts.schemas import AccountOut
from clarion.people.passwords import MIN_LENGTH
from clarion.roles import Role
from clarion.schemas import CamelModel, OutModel, UtcDatetime

_PASSWORD = f"at least {MIN_LENGTH} characters; stored as an argon2id hash, never returned"


def _email(value: str) -> str:
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError("must be an email address (name@example.com)")
    return value


class UserCreate(CamelModel):
    email: str = Field(max_length=320, description="unique across the installation (any case)")
    password: str = Field(min_length=MIN_LENGTH, max_length=1024, description=_PASSWORD)
    name: str | None = Field(default=None, max_length=200)
    role: Role

    _check_email = field_validator("email")(_email)


class UserUpdate(CamelModel):
    """Partial. An owner may change anyone's name, role and password; anyone may change their
    own name, and their own password with `currentPassword`."""

    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    password: str | None = Field(
        default=None, min_length=MIN_LENGTH, max_length=1024, description=_PASSWORD
    )
    current_password: str | None = Field(
        default=None, max_length=1024, description="needed to change your own password"
    )


class UserOut(OutModel):
    id: int
    email: str
    name: str | None
    role: Role
    created_at: UtcDatetime
    last_login_at: UtcDatetime | None


class LoginIn(CamelModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class LoginOut(OutModel):
    user: UserOut
    account: AccountOut


class KeyOut(OutModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="the first characters of the key, to recognise it")
    created_at: UtcDatetime


class MeOut(OutModel):
    user: UserOut | None = Field(description="the signed-in user (session), else null")
    key: KeyOut | None = Field(description="the API key that signed the request, else null")
    account: AccountOut
    role: Role
