from decimal import Decimal

from pydantic import Field

from clarion.money import Credits
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
