"""Request and response bodies of the sending routes."""

from typing import Literal

from pydantic import Field, field_validator

from clarion.money import Credits, from_units
from clarion.schemas import CamelModel, OutModel, UtcDatetime

MessageStatus = Literal[
    "queued", "sending", "sent", "delivered", "read", "failed", "skipped", "expired"
]


class MessageOut(OutModel):
    """One recipient's result. `channel` is `sms` for an RCS recipient who fell back to SMS;
    `price` is what was charged for it (0 until it is accepted by the provider)."""

    id: int
    contact_id: int | None
    phone: str
    channel: str
    status: str
    units: int
    price: Credits
    provider_message_id: str | None
    error_code: str | None
    error_message: str | None
    not_before: UtcDatetime | None = Field(
        description="held outside its sending hours: the next allowed instant (UTC); "
        "the message stays queued until then"
    )
    sent_at: UtcDatetime | None
    delivered_at: UtcDatetime | None
    read_at: UtcDatetime | None
    updated_at: UtcDatetime
    variant: str | None = Field(
        default=None, description="A/B campaigns: the variant whose message it got"
    )
    clicks: int = Field(default=0, description="visits of this recipient's tracked links")
    first_clicked_at: UtcDatetime | None = Field(
        default=None, description="when the recipient first clicked one of them"
    )

    @field_validator("price", mode="before")
    @classmethod
    def _from_units(cls, value: object) -> object:
        # Stored as an integer of 1/10,000 credit.
        return from_units(value) if isinstance(value, int) else value


class AccountMessageOut(MessageOut):
    """A message of the account (`GET /messages`): a campaign's recipient, or a message of
    no campaign (`campaignId` null: a reply to an inbound keyword)."""

    campaign_id: int | None


class TestSendIn(CamelModel):
    phones: list[str] = Field(
        min_length=1,
        max_length=10,
        description="1 to 10 phone numbers in international format (+33612345678)",
    )


class TestSendResult(OutModel):
    phone: str
    message_id: int | None = Field(description="the test message's id (none if not created)")
    channel: str
    status: Literal["sent", "failed"]
    units: int
    price: Credits
    provider_message_id: str | None
    error_code: str | None
    error_message: str | None


class TestSendOut(OutModel):
    campaign_id: int
    results: list[TestSendResult]
