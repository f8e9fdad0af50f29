"""Campaign request and response bodies (camelCase on the wire)."""

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, WithJsonSchema, field_validator
from pydantic.json_schema import SkipJsonSchema

from clarion.compliance.schemas import WindowIn
from clarion.money import Credits
from clarion.schemas import CamelModel, Id, OutModel, RequestDatetime, UtcDatetime
from clarion.segments.schemas import Filter

CHANNELS = ("sms", "rcs", "whatsapp")

# A sender is either an alphanumeric id (1-11 of A-Z a-z 0-9 and space, at least one letter,
# what carriers accept as an alphanumeric sender) or a number: a short code (3-8 digits) or an
# E.164-like long number (+ then 6-15 digits).
_ALNUM_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_NUMERIC_SENDER = re.compile(r"^(\d{3,8}|\+?\d{6,15})$")

# What the validators below accept, for the OpenAPI schema (JSON Schema patterns have no
# case-insensitive flag, hence the character classes).
CHANNEL_PATTERN = "^([sS][mM][sS]|[rR][cC][sS]|[wW][hH][aA][tT][sS][aA][pP][pP])$"
CHANNEL_SCHEMA = {
    "type": "string",
    "pattern": CHANNEL_PATTERN,
    "description": "sms, rcs or whatsapp (case-insensitive)",
}
SENDER_SCHEMA = {
    "description": "alphanumeric (1-11 letters, digits or spaces, with a letter), a short "
    "code (3-8 digits) or a phone number (+ and 6-15 digits)",
    "anyOf": [
        {"type": "string", "maxLength": 11, "pattern": "^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$"},
        {"type": "string", "pattern": "^([0-9]{3,8}|[+]?[0-9]{6,15})$"},
        {"type": "null"},
    ],
}
FALLBACK_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^[sS][mM][sS]$"}, {"type": "null"}],
    "description": '"sms" on RCS campaigns only: RCS-less phones get the SMS',
}

Purpose = Literal["marketing", "transactional"]
PURPOSE_DESCRIPTION = (
    "marketing (default): the account's sending hours and frequency cap apply; "
    "transactional: neither applies"
)
SEND_WINDOW_DESCRIPTION = (
    "narrows sending to these days and hours of the recipient's local time, with or "
    "without the account's sending hours (null: no narrowing)"
)
EXPIRES_DESCRIPTION = (
    "a message not handed to a provider by then is skipped (EXPIRED) and costs nothing"
)

MAX_LISTS = 100
ListIds = Annotated[list[Id], Field(max_length=MAX_LISTS)]
MAX_SEGMENTS = 20
SegmentIds = Annotated[
    list[Id],
    Field(
        max_length=MAX_SEGMENTS,
        description="segments whose matching contacts join the audience (with the lists' "
        "members); their filters are copied onto the campaign when given, so a later edit "
        "or deletion of a segment does not change the campaign",
    ),
]
AUDIENCE_FILTER = (
    "narrows the audience (the union of listIds and segmentIds) to the contacts it matches; "
    "with neither lists nor segments it selects among all the account's contacts"
)
ParamKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ParamValue = Annotated[str, StringConstraints(max_length=1000)]


def normalize_channel(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in CHANNELS:
        return value.strip().lower()
    raise ValueError("channel must be one of sms, rcs, whatsapp (case-insensitive)")


def _normalize_fallback(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "sms":
        return "sms"
    raise ValueError('fallbackChannel may only be "sms" (or null)')


def _check_sender(value: str | None) -> str | None:
    if value is None:
        return None
    if _ALNUM_SENDER.match(value) or _NUMERIC_SENDER.match(value):
        return value
    raise ValueError(
        "sender must be alphanumeric (1-11 letters, digits or spaces, with a letter), "
        "a short code (3-8 digits) or a phone number (+ and 6-15 digits)"
    )


class MessageIn(CamelModel):
    """`text` for SMS and RCS; `templateId` (+ `templateParams`) for WhatsApp, optionally RCS.
    `templateParams` gives the values of non-contact variables and the fallback for an empty
    contact field."""

    text: str | None = Field(default=None, max_length=5000)
    template_id: Id | None = None
    template_params: dict[ParamKey, ParamValue] | None = Field(default=None, max_length=100)


# A/B tests: 2 to 5 variants; the test waits at most a week for its decision.
MIN_VARIANTS, MAX_VARIANTS = 2, 5
MAX_DECIDE_MINUTES = 7 * 24 * 60
VariantName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    Field(description="unique within the campaign (case-insensitive), 1-32 characters"),
]


class VariantIn(CamelModel):
    """One A/B variant: a name and a message checked exactly as a campaign's `message`."""

    name: VariantName
    message: MessageIn


class AbTestIn(CamelModel):
    """How the A/B test runs: `testShare` of the audience (chosen at random, reproducibly)
    is split evenly between the variants; `decideAfterMinutes` after the last test message
    is handed to the provider, the variant with the best rate of `metric` wins (ties: the
    earlier variant) and the rest of the audience gets it. The audience is the campaign's
    targeting (lists, segments, filter) as for any campaign; with trackLinks each variant's
    messages carry their own short links."""

    test_share: float = Field(gt=0, lt=1, description="share of the audience in the test, 0<x<1")
    metric: Literal["uniqueClicks", "delivered"] = Field(
        description="delivered: (delivered + read) / test messages of the variant; "
        "uniqueClicks: recipients who clicked a tracked link / test messages of the variant "
        "(needs trackLinks: 422 without)"
    )
    decide_after_minutes: int = Field(ge=1, le=MAX_DECIDE_MINUTES)


Variants = Annotated[list[VariantIn], Field(min_length=MIN_VARIANTS, max_length=MAX_VARIANTS)]


class WinnerIn(CamelModel):
    name: VariantName


class _CampaignFields(CamelModel):
    @field_validator("channel", mode="before", check_fields=False)
    @classmethod
    def _channel(cls, value: Any) -> Any:
        return None if value is None else normalize_channel(value)

    @field_validator("fallback_channel", mode="before", check_fields=False)
    @classmethod
    def _fallback(cls, value: Any) -> Any:
        return _normalize_fallback(value)

    @field_validator("sender", check_fields=False)
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return _check_sender(value)


class CampaignCreate(_CampaignFields):
    """A new draft. The audience may be empty in a draft; confirming needs at least one of
    `listIds`, `segmentIds` or `filter`."""

    name: str = Field(min_length=1, max_length=200)
    channel: Annotated[str, WithJsonSchema(CHANNEL_SCHEMA)]
    message: MessageIn | None = Field(
        default=None, description="required unless the campaign has `variants` (then absent)"
    )
    variants: Variants | None = Field(
        default=None, description="A/B test: 2 to 5 variants instead of `message`; needs abTest"
    )
    ab_test: AbTestIn | None = Field(default=None, description="required with `variants`")
    list_ids: ListIds = Field(default_factory=list)
    exclude_list_ids: ListIds = Field(default_factory=list)
    segment_ids: SegmentIds = Field(default_factory=list)
    filter: Filter | None = Field(default=None, description=AUDIENCE_FILTER)
    sender: Annotated[str | None, WithJsonSchema(SENDER_SCHEMA)] = Field(
        default=None, max_length=15
    )
    fallback_channel: Annotated[str | None, WithJsonSchema(FALLBACK_SCHEMA)] = None
    purpose: Purpose = Field(default="marketing", description=PURPOSE_DESCRIPTION)
    send_window: WindowIn | None = Field(default=None, description=SEND_WINDOW_DESCRIPTION)
    expires_at: RequestDatetime | None = Field(default=None, description=EXPIRES_DESCRIPTION)
    smart_encoding: bool = Field(
        default=False,
        description="SMS only (422 on other channels): replace characters that force UCS-2 "
        "(typographic quotes and apostrophes, dashes, ellipsis, Unicode spaces) by GSM-7 "
        "look-alikes after personalization, before counting and sending. The table is the "
        "one `POST /preview` applies with `smartEncoding`.",
    )
    track_links: bool = Field(
        default=False,
        description="SMS and RCS text (422 on WhatsApp): each http(s):// URL of the "
        "personalized text becomes a per-recipient short link `{CLARION_LINK_BASE_URL}/{code}` "
        "(7 URL-safe characters), made when the messages are created (with `variants`, from "
        "each variant's own text); the estimate counts the short link's length. Clicks: "
        "campaign `stats.clicks`/`uniqueClicks`, message items, `GET /campaigns/{id}/links`.",
    )


class CampaignUpdate(_CampaignFields):
    """Partial update: only the fields present change. `scheduledAt` may move the send time of
    a `scheduled` campaign (it must stay in the future); a draft is scheduled by confirm."""

    # SkipJsonSchema: these may be left out but not sent as null (422), as the schema says.
    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    channel: Annotated[str, WithJsonSchema(CHANNEL_SCHEMA)] | SkipJsonSchema[None] = None
    message: MessageIn | SkipJsonSchema[None] = Field(
        default=None, description="replaces the variants of an A/B campaign (give abTest: null)"
    )
    variants: Variants | None = Field(
        default=None, description="replaces `message`; null turns the A/B test off"
    )
    ab_test: AbTestIn | None = None
    list_ids: ListIds | SkipJsonSchema[None] = None
    exclude_list_ids: ListIds | SkipJsonSchema[None] = None
    segment_ids: SegmentIds | SkipJsonSchema[None] = None
    filter: Filter | None = Field(default=None, description=AUDIENCE_FILTER + "; null removes it")
    sender: Annotated[str | None, WithJsonSchema(SENDER_SCHEMA)] = Field(
        default=None, max_length=15
    )
    fallback_channel: Annotated[str | None, WithJsonSchema(FALLBACK_SCHEMA)] = None
    scheduled_at: RequestDatetime | None = None
    purpose: Purpose | SkipJsonSchema[None] = Field(default=None, description=PURPOSE_DESCRIPTION)
    send_window: WindowIn | None = Field(default=None, description=SEND_WINDOW_DESCRIPTION)
    expires_at: RequestDatetime | None = Field(default=None, description=EXPIRES_DESCRIPTION)
    smart_encoding: bool | SkipJsonSchema[None] = Field(
        default=None, description="see the create body (absent: unchanged)"
    )
    track_links: bool | SkipJsonSchema[None] = Field(
        default=None, description="see the create body (absent: unchanged)"
    )


class ConfirmIn(CamelModel):
    """`{}` sends now; `{"scheduledAt": "..."}` (future, with an offset) schedules."""

    scheduled_at: RequestDatetime | None = None


class SubmitIn(CamelModel):
    """Submit a draft for approval, to be sent now or at `scheduledAt` once approved."""

    scheduled_at: RequestDatetime | None = None
    note: str | None = Field(default=None, max_length=1000)


class RejectIn(CamelModel):
    note: str = Field(min_length=1, max_length=1000, description="why, for the submitter")


class PersonOut(OutModel):
    type: str = Field(description="user, or key for an API key")
    id: int
    email: str | None
    name: str | None


class ApprovalOut(OutModel):
    submitted_by: PersonOut
    submitted_at: str
    scheduled_at: str | None = Field(description="when to send once approved (null: at once)")
    note: str | None
    decided_by: PersonOut | None
    decided_at: str | None
    decision: str | None = Field(description="approved or rejected; null while awaiting")
    decision_note: str | None


class DeliveryCounters(OutModel):
    recipients: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    skipped: int = 0
    expired: int = Field(
        default=0, description="accepted, but no final receipt within CLARION_RECEIPT_TIMEOUT"
    )


class ClickCounters(OutModel):
    """Beside the status partition (not part of it): what the recipients did with the
    tracked links."""

    clicks: int = Field(default=0, description="every visit of the campaign's short links")
    unique_clicks: int = Field(
        default=0, description="recipients who clicked at least one of their links"
    )


class CampaignStats(DeliveryCounters, ClickCounters):
    pass


class CostOut(OutModel):
    reserved: Credits
    spent: Credits


class VariantStats(DeliveryCounters, ClickCounters):
    """A variant's messages by status and, beside that partition, the clicks on their
    tracked links (0 without trackLinks). A uniqueClicks test compares uniqueClicks /
    recipients; once decided, the winner's figures include the remainder's messages."""


class VariantOut(OutModel):
    name: str
    message: dict[str, Any]
    stats: VariantStats | None = Field(
        description="the status partition of its messages and their clicks (null in live "
        "events: read the campaign for it)"
    )


class AbTestOut(OutModel):
    test_share: float
    metric: str
    decide_after_minutes: int
    test_started_at: UtcDatetime | None = Field(
        description="when the test share was queued (null: not yet)"
    )
    winner: str | None = Field(description="the winning variant's name (null: not decided)")
    decided_at: UtcDatetime | None


class CampaignOut(OutModel):
    id: int
    name: str
    channel: str
    status: str
    message: dict[str, Any] | None = Field(description="null for an A/B campaign (variants)")
    variants: list[VariantOut] | None = None
    ab_test: AbTestOut | None = None
    list_ids: list[int]
    exclude_list_ids: list[int]
    segment_ids: list[int]
    filter: Filter | None
    sender: str | None
    fallback_channel: str | None
    purpose: Purpose = Field(description=PURPOSE_DESCRIPTION)
    send_window: WindowIn | None = Field(description=SEND_WINDOW_DESCRIPTION)
    expires_at: UtcDatetime | None = Field(description=EXPIRES_DESCRIPTION)
    smart_encoding: bool
    track_links: bool
    scheduled_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    confirmed_at: UtcDatetime | None
    started_at: UtcDatetime | None
    completed_at: UtcDatetime | None
    estimate: dict[str, Any] | None
    stats: CampaignStats
    cost: CostOut
    approval: ApprovalOut | None = Field(
        default=None, description="maker/checker: null until the campaign is first submitted"
    )


class Excluded(OutModel):
    duplicates: int = Field(description="memberships beyond the first of a contact")
    opted_out: int = Field(description="contacts opted out of the channel")
    no_consent: int = Field(
        default=0,
        description="contacts left out for want of granted consent for the channel "
        "(marketing campaigns when the account requires consent)",
    )
    frequency_capped: int = Field(
        default=0,
        description="contacts who already received the account's frequency cap of "
        "marketing messages in its period (marketing campaigns)",
    )
    invalid: int = Field(description="contacts with no applicable rate for their country")


class ScheduleOut(OutModel):
    """When the recipients may be sent to, given their sending hours and the campaign's
    `sendWindow` (recipient local time)."""

    sendable_now: int = Field(description="recipients inside their window now")
    held: int = Field(description="recipients who wait for their window to open")
    first_send_at: UtcDatetime | None = Field(
        description="the time of the estimate when some may go now, else when the first "
        "window opens (null: no recipients)"
    )
    last_window_opens_at: UtcDatetime | None = Field(
        description="when the last recipient's window opens (null: no recipients; the time "
        "of the estimate when none is held)"
    )


class BreakdownRow(OutModel):
    country: str
    category: str | None = Field(
        default=None, description="rate category (RCS basic/single, WhatsApp template category)"
    )
    recipients: int
    units: int
    unit_price: Credits
    price: Credits


class VariantEstimateOut(OutModel):
    name: str
    test_recipients: int
    test_units: int
    test_price: Credits
    audience_units: int = Field(description="units if the whole audience got this variant")
    audience_price: Credits = Field(description="price if the whole audience got this variant")
    audience_recipients: int = Field(description="the audience this variant was priced for")


class AbEstimateOut(OutModel):
    """The A/B reservation: each variant's test share at its own average price per
    recipient, the remainder at the dearest variant's (the worst case)."""

    test_recipients: int
    remainder_recipients: int
    remainder_units: int
    remainder_price: Credits
    variants: list[VariantEstimateOut]


class EstimateOut(OutModel):
    campaign_id: int
    channel: str
    recipients: int
    excluded: Excluded
    schedule: ScheduleOut | None = None
    units: int
    units_without_smart_encoding: int | None = Field(
        default=None,
        description="SMS: the units the same texts would take without smart encoding (equal "
        "to `units` when smartEncoding is off); null for other channels",
    )
    price: Credits
    max_price: Credits | None = Field(
        default=None, description="RCS with SMS fallback: the price if every recipient fell back"
    )
    worst_case: Credits | None = Field(
        default=None,
        description="RCS with SMS fallback: each recipient at the dearer of RCS and its SMS "
        "fallback; this is what confirm reserves",
    )
    breakdown: list[BreakdownRow]
    encoding: str | None = Field(description="GSM-7, UCS-2 or mixed (SMS text; else null)")
    max_parts: int | None
    ab_test: AbEstimateOut | None = Field(
        default=None,
        description="A/B campaigns: how the price splits. `price` and `units` are then the "
        "split's (what confirm reserves); recipients, exclusions, breakdown and encoding "
        "describe the audience with the dearest variant; maxParts is the largest of any",
    )
    balance: Credits
    available: Credits
    sufficient: bool
    computed_at: UtcDatetime


class PriceOut(OutModel):
    price: Credits
    units: int
    recipients: int
    computed_at: UtcDatetime
    reserved: Credits
    spent: Credits


class StatsCounters(DeliveryCounters, ClickCounters):
    campaigns: int = 0
    credits_spent: Credits
    delivery_rate: float


class DayStats(StatsCounters):
    date: date


class StatsOut(StatsCounters):
    from_: date | None = Field(alias="from")
    to: date | None
    channel: str | None
    by_channel: dict[str, StatsCounters]
    by_day: list[DayStats]
