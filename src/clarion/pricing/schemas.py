from typing import Literal

from pydantic import Field

from clarion.money import Credits
from clarion.pricing.rates import MAX_ROWS
from clarion.schemas import CamelModel, OutModel


class RateIn(CamelModel):
    channel: str = Field(max_length=32, description="sms, rcs or whatsapp (any case)")
    country: str = Field(
        max_length=8, description='ISO 3166 alpha-2 code (any case), or "*" for every other one'
    )
    category: str | None = Field(
        default=None,
        max_length=32,
        description="WhatsApp: marketing, utility or authentication; RCS: basic or single; "
        "SMS: none. Absent or null: the row applies to every category.",
    )
    price: Credits = Field(ge=0, description="credits per unit, at most 4 decimal places")


class RateCardIn(CamelModel):
    rates: list[RateIn] = Field(
        max_length=MAX_ROWS,
        description="The whole card; it replaces the current one. An empty list goes back to "
        "the packaged default card.",
    )


class RateOut(OutModel):
    channel: str
    country: str
    category: str | None = Field(description="null: every category")
    price: Credits = Field(description="credits per unit")


class RateCardOut(OutModel):
    source: Literal["custom", "default"] = Field(
        description="custom: set with PUT /admin/rates; default: the card packaged with Clarion"
    )
    fingerprint: str = Field(description="changes whenever the card changes")
    items: list[RateOut]
