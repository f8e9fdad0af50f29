"""The provider protocol: every channel's provider (the simulator included) sits behind it.

The dispatcher hands a provider a batch of rendered messages and gets one result per message;
receipts and inbound messages come back either through a webhook route (parsed by the
provider's module) or, for connection-based providers (SMPP, the in-process simulator),
pushed into the `ReceiptSink` given to `start()`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, overload, runtime_checkable


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message: charge it, status `sent`
    REFUSED = "refused"  # permanent refusal at submit: `failed`, not charged
    RETRY = "retry"  # transient error (5xx, timeout, dropped connection): retry with backoff
    THROTTLED = "throttled"  # the provider asks us to slow down: halve the rate, retry
    NO_CAPABILITY = "no_capability"  # RCS: the phone cannot take RCS (fallback or fail)


@dataclass(slots=True)
class TemplateRef:
    name: str
    language: str
    category: str | None
    parameters: list[str]  # body parameters, in order of first appearance of the variables


@dataclass(slots=True)
class OutboundMessage:
    """One rendered message, ready for the wire. `id` is our message id: providers that
    deduplicate by a client id (RBM messageId, the simulator) send it as that id."""

    id: int
    channel: str  # the channel it goes out on (`sms` for an RCS recipient who fell back)
    to: str  # E.164
    sender: str | None
    text: str | None = None
    template: TemplateRef | None = None
    rich_card: dict[str, Any] | None = None
    suggestions: list[Any] | None = None


@dataclass(slots=True)
class SubmitResult:
    message_id: int
    outcome: Outcome
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None  # seconds, when the provider said


@overload
def _storable(value: str) -> str: ...
@overload
def _storable(value: None) -> None: ...
def _storable(value: str | None) -> str | None:
    """A provider's stray U+0000 is dropped and a lone surrogate becomes '?': PostgreSQL
    cannot store them, and refusing the receipt would lose a delivery status over them."""
    if not value or (value.isascii() and "\x00" not in value):
        return value
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


@dataclass(slots=True)
class Receipt:
    """A delivery report, normalized. `status` is one of sent, delivered, read, failed.
    `refund`: with `failed`, the provider does not bill this message (Meta bills WhatsApp
    per delivered message; Twilio does not bill a cancelled one): what it was charged is
    given back when this receipt fails it."""

    provider: str
    provider_message_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    occurred_at: datetime | None = None
    raw: str | None = None
    refund: bool = False

    def __post_init__(self) -> None:
        self.provider_message_id = _storable(self.provider_message_id)
        self.status = _storable(self.status)
        self.error_code = _storable(self.error_code)
        self.error_message = _storable(self.error_message)
        self.raw = _storable(self.raw)


@dataclass(slots=True)
class InboundMessage:
    """A message a recipient sent us (keywords: opt-out, opt-in, help)."""

    provider: str
    channel: str
    from_phone: str  # E.164 when the provider gives it so
    text: str
    raw: str | None = None
    received_at: datetime | None = None
    # The provider's id of the inbound message: a webhook the provider retries carries the
    # same one, so it is handled once. None when the protocol has none (SMPP MO).
    provider_message_id: str | None = None
    to: str | None = None  # the number or sender id it was sent to (replies go out from it)
    # Without an id, a digest of what identifies the message on the wire (SMPP MO: addresses,
    # data coding, payload, concatenation): a redelivery carries the same one, so it is
    # handled once when it comes within the window the delivery domain allows.
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        self.from_phone = _storable(self.from_phone)
        self.text = _storable(self.text)
        self.raw = _storable(self.raw)
        self.provider_message_id = _storable(self.provider_message_id)
        self.to = _storable(self.to)


@dataclass(slots=True)
class Capabilities:
    idempotent_submit: bool = False  # the provider deduplicates by our message id
    rcs_capability_check: bool = False  # check_capability() answers per phone
    max_batch: int = 100


class Pacer(Protocol):
    """The engine's adaptive send rate of one provider, per sender. A provider that makes
    several wire requests per message (SMPP parts) paces each of them through it, so that a
    throttle answer slows parts and messages alike."""

    async def acquire(self, sender: str | None, n: int = 1) -> None: ...

    def on_throttle(self, sender: str | None) -> None: ...


@runtime_checkable
class SelfPaced(Protocol):
    """A provider that paces its own wire requests through the engine's `Pacer` (given once
    with `use_pacer`); the engine then does not pace its messages before `submit`."""

    def use_pacer(self, pacer: Pacer) -> None: ...


class ReceiptSink(Protocol):
    """Where pushed receipts and inbound messages go (the delivery domain implements it)."""

    async def receipts(self, items: Sequence[Receipt]) -> None: ...

    async def inbound(self, items: Sequence[InboundMessage]) -> None: ...


@runtime_checkable
class AliasSink(Protocol):
    """A sink that also stores provider ids standing for another message's id (the later
    parts of a long SMPP message), so receipts for them map after a restart."""

    async def aliases(self, provider: str, pairs: Sequence[tuple[str, str]]) -> None: ...


@runtime_checkable
class Provider(Protocol):
    name: str  # e.g. "simulator", "twilio", "smpp", "cloud", "rbm"; stored on each message
    channel: str  # "sms", "whatsapp" or "rcs"
    capabilities: Capabilities

    async def start(self, sink: ReceiptSink) -> None:
        """Open pooled sessions or binds; keep `sink` for pushed receipts."""

    async def close(self) -> None:
        """Release connections; pending submits are answered RETRY."""

    async def submit(self, batch: Sequence[OutboundMessage]) -> list[SubmitResult]:
        """Send the batch with bounded concurrency; one result per message, in any order.
        Never raises for a per-message problem: it becomes that message's outcome."""

    async def check_capability(self, phones: Sequence[str]) -> dict[str, bool]:
        """RCS only: which phones can take RCS. Others answer True for every phone."""


@dataclass(slots=True)
class ProviderConfigError(Exception):
    """A selected provider is misconfigured; `clarion serve` stops with this sentence."""

    message: str
    missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message
