from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from clarion.money import Credits
from clarion.roles import Role
from clarion.schemas import CamelModel, OutModel, UtcDatetime


class AccountCreate(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    credits: Credits = Field(default=Decimal(0), ge=0)


class AccountCreated(OutModel):
    id: int
    name: str
    api_key: str
    balance: Credits


class CreditsChange(CamelModel):
    amount: Credits
    note: str | None = Field(default=None, max_length=1000)


class BalanceOut(OutModel):
    balance: Credits


class AccountOut(OutModel):
    id: int
    name: str
    balance: Credits
    reserved: Credits
    available: Credits


class ApiKeyOut(OutModel):
    id: int
    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class ApiKeyCreated(OutModel):
    id: int
    api_key: str


class LedgerEntryOut(OutModel):
    id: int
    kind: str
    amount: Credits = Field(description="change of the balance")
    reserved: Credits = Field(description="change of the reserved credits")
    campaign_id: int | None
    note: str | None
    created_at: UtcDatetime


class KeyCreate(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(default="manager", description="the key's role (default manager)")


class KeyCreated(OutModel):
    id: int
    name: str
    role: Role
    prefix: str
    key: str = Field(description="the API key itself, shown this once")
    created_at: UtcDatetime


class AccountKeyOut(OutModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="the first characters of the key, to recognise it")
    created_at: UtcDatetime


class SettingsOut(OutModel):
    approval_required: bool = Field(
        description="confirm is refused (409 approval-required): campaigns are submitted and "
        "approved by another person"
    )
    timezone: str = Field(description="IANA time zone the console shows times in")


class SettingsIn(CamelModel):
    """Partial: fields left out keep their value."""

    approval_required: bool | None = None
    timezone: str | None = Field(default=None, max_length=64, description="an IANA name")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Paris or UTC") from None
        return value
