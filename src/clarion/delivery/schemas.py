"""The simulator's receipt webhook body (what `clarion simulator` POSTs)."""

from typing import Literal

from pydantic import Field

from clarion.schemas import CamelModel, OutModel, RequestDatetime


class SimulatorReceiptIn(CamelModel):
    provider_message_id: str = Field(min_length=1, max_length=128)
    status: Literal["sent", "delivered", "read", "failed"]
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1000)
    timestamp: RequestDatetime | None = None


class SimulatorInboundIn(CamelModel):
    from_: str = Field(alias="from", min_length=1, max_length=32)
    channel: Literal["sms", "whatsapp", "rcs"]
    text: str = Field(max_length=5000)
    timestamp: RequestDatetime | None = None
    id: str | None = Field(
        default=None,
        max_length=128,
        description="the simulator's id of the inbound message (a redelivery repeats it)",
    )
    to: str | None = Field(default=None, max_length=32, description="the sender it was sent to")


class SimulatorWebhookIn(CamelModel):
    receipts: list[SimulatorReceiptIn] = Field(default_factory=list, max_length=10_000)
    inbound: list[SimulatorInboundIn] = Field(default_factory=list, max_length=1_000)


class WebhookAck(OutModel):
    received: int
    applied: int
    unchanged: int
    parked: int
    inbound: int
