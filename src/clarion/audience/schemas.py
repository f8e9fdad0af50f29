"""Request and response models of contacts, lists and imports."""

import json
import zoneinfo
from functools import cache
from typing import Annotated, Any, Literal

import phonenumbers
import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from clarion.audience.phones import check_region
from clarion.schemas import CHANNELS, CamelModel, Id, OutModel, RequestDatetime, UtcDatetime

MAX_BULK_ROWS = 10_000

Name = Annotated[str, Field(max_length=200)]
# Every region the phone library has numbering plans for, in either case (what check_region
# accepts; 001, the non-geographic "region", is not a country).
REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if r.isalpha())
Country = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        description="ISO 3166 alpha-2 code (any case) used to read national numbers",
        examples=["FR"],
        json_schema_extra={"enum": REGIONS + [r.lower() for r in REGIONS]},
    ),
]
Channel = Literal["sms", "rcs", "whatsapp"]

MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 64 * 1024


def attributes_problem(value: dict[str, Any]) -> str | None:
    """Why these attributes are too large for one contact, or None. The bound keeps every
    contact row small, whatever a client sends within the 10 MB body."""
    if len(value) > MAX_ATTRIBUTES:
        return f"at most {MAX_ATTRIBUTES} attributes ({len(value)} given)"
    size = len(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        )
    )
    if size > MAX_ATTRIBUTES_BYTES:
        return f"attributes take at most {MAX_ATTRIBUTES_BYTES:,} bytes as JSON ({size:,} given)"
    return None


def _check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    problem = attributes_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Attributes = Annotated[
    dict[str, Any],
    AfterValidator(_check_attributes),
    Field(
        json_schema_extra={"maxProperties": MAX_ATTRIBUTES},
        description=f"a JSON object: at most {MAX_ATTRIBUTES} keys and "
        f"{MAX_ATTRIBUTES_BYTES:,} bytes as JSON",
    ),
]


def _check_subdivision(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if pycountry.subdivisions.get(code=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-2 subdivision code (such as US-FL)")
    return code


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_time_zone(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in _time_zones():
        raise ValueError(f"{value!r} is not an IANA time zone (such as America/New_York)")
    return value


Region = Annotated[
    str,
    AfterValidator(_check_subdivision),
    Field(
        min_length=4,
        max_length=6,
        pattern="^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$",
        description="ISO 3166-2 subdivision (any case; stored upper-case), e.g. US-FL",
        examples=["US-FL"],
    ),
]
TimeZone = Annotated[
    str,
    AfterValidator(_check_time_zone),
    Field(max_length=64, description="IANA time zone, e.g. America/New_York"),
]


def _lower_channels(value: Any) -> Any:
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


ConsentStatus = Literal["granted", "denied"]
CONSENT_STATUSES = ("granted", "denied")


class ConsentIn(CamelModel):
    """Consent to marketing on one channel. A bare string (`"granted"`) is short for
    `{"status": "granted"}`."""

    status: ConsentStatus
    at: RequestDatetime | None = Field(
        default=None, description="when it was given or withdrawn (default: now)"
    )
    proof: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="what shows it (a form id, a recording, a signed page...)"
    )

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def _consent_shorthand(value: Any) -> Any:
    """Channel keys in any case; `"granted"` for `{"status": "granted"}`."""
    if not isinstance(value, dict):
        return value
    return {
        (k.lower() if isinstance(k, str) else k): ({"status": v} if isinstance(v, str) else v)
        for k, v in value.items()
    }


ConsentMap = Annotated[
    dict[Channel, ConsentIn],
    BeforeValidator(_consent_shorthand),
    Field(
        description="consent per channel (sms, rcs, whatsapp); a channel left out keeps "
        "what it had",
        examples=[{"sms": {"status": "granted", "proof": "signup form 2026-11-02"}}],
    ),
]


class ConsentOut(OutModel):
    status: ConsentStatus
    at: UtcDatetime
    source: str = Field(description="api, console, import, inbound or provider")
    proof: str | None = None


class HistoryActor(OutModel):
    type: str = Field(description="key, user, provider or system")
    id: int | None
    name: str | None


class HistoryItem(OutModel):
    at: UtcDatetime
    kind: Literal["opt_out", "opt_in", "consent"]
    channel: str
    source: str = Field(description="inbound, api, import, console or provider")
    actor: HistoryActor | None = Field(description="who caused it (null for older entries)")
    status: ConsentStatus | None = Field(description="the new consent (consent entries)")
    detail: str | None = Field(
        description="the inbound text, the provider's reason or the consent's proof"
    )


class ContactCreate(CamelModel):
    phone: str = Field(
        min_length=1, max_length=64, description="E.164, or national with defaultCountry"
    )
    first_name: Name | None = None
    last_name: Name | None = None
    attributes: Attributes = Field(default_factory=dict)
    region: Region | None = None
    timezone: TimeZone | None = None
    default_country: Country | None = None
    consent: ConsentMap = Field(default_factory=dict)

    @field_validator("default_country")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return check_region(value)


class ContactUpdate(CamelModel):
    """Partial update: only the fields present change. `attributes` replaces the whole object;
    `optOuts` sets the exact list of channels the contact is opted out of (recorded with
    source "api"); `null` clears a name."""

    phone: Annotated[str, Field(min_length=1, max_length=64)] | SkipJsonSchema[None] = None
    first_name: Name | None = None
    last_name: Name | None = None
    attributes: Attributes | None = None
    region: Region | None = Field(default=None, description="null clears it")
    timezone: TimeZone | None = Field(default=None, description="null clears it")
    opt_outs: list[Channel] | None = Field(default=None, max_length=len(CHANNELS))
    consent: ConsentMap = Field(default_factory=dict)
    default_country: Country | None = None

    @field_validator("default_country")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return check_region(value)

    @field_validator("opt_outs", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        return _lower_channels(value)


class ContactOut(OutModel):
    id: int
    phone: str = Field(description="E.164")
    country: str = Field(description="ISO 3166 alpha-2 of the number ('ZZ': non-geographic)")
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    region: str | None = Field(description="ISO 3166-2 subdivision, when set")
    timezone: str | None = Field(description="IANA time zone, when set")
    opt_outs: list[str]
    consent: dict[str, ConsentOut] = Field(
        description="consent per channel; a channel never asked is absent"
    )
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ListCreate(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10_000)] | None = None


class ListUpdate(CamelModel):
    name: Annotated[str, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    description: Annotated[str, Field(max_length=10_000)] | None = None


class ListOut(OutModel):
    id: int
    name: str
    description: str | None
    contact_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime = Field(description="changes with every membership change too")


class BulkContactRow(CamelModel):
    """One row of `contacts` in POST /lists/{id}/contacts (validated row by row)."""

    phone: str = Field(max_length=64)
    first_name: Name | None = None
    last_name: Name | None = None
    attributes: Attributes | None = None
    default_country: Country | None = None
    consent: ConsentMap = Field(default_factory=dict)

    @field_validator("default_country")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return check_region(value)


class MembersAdd(CamelModel):
    contact_ids: list[Id] = Field(
        default_factory=list, max_length=MAX_BULK_ROWS, description="existing contacts"
    )
    contacts: list[Any] = Field(
        default_factory=list,
        max_length=MAX_BULK_ROWS,
        description="contacts upserted by phone: objects with `phone` and optional "
        "`firstName`, `lastName`, `attributes`, `defaultCountry`, `consent`. Each row is "
        "validated on its own: a bad row is reported in `invalid` and never rejects the others.",
    )


class InvalidRow(OutModel):
    field: Literal["contacts", "contactIds"] = Field(
        description="which array of the request the row came from"
    )
    index: int = Field(description="position of the row in that array (from 0)")
    phone: str | None = Field(description="the phone as sent (null for contactIds rows)")
    contact_id: int | None = Field(default=None, description="the id sent (contactIds rows)")
    reason: str


class MembersAdded(OutModel):
    added: int = Field(description="contacts that became members")
    already_members: int = Field(
        description="valid rows whose contact was a member already (or repeated in the request)"
    )
    invalid: list[InvalidRow]


class MembersRemove(CamelModel):
    contact_ids: list[Id] = Field(max_length=MAX_BULK_ROWS)


class MembersRemoved(OutModel):
    removed: int


class ImportStarted(OutModel):
    id: int
    status: str


class ImportError_(OutModel):
    row: int = Field(description="record number in the file, the header being row 1")
    phone: str | None
    reason: str


class ImportOut(OutModel):
    id: int
    list_id: int | None
    status: Literal["running", "done", "failed"]
    rows: int
    imported: int = Field(description="rows that created a contact")
    updated: int = Field(description="rows that matched an existing contact (or an earlier row)")
    invalid: int
    errors: list[ImportError_] = Field(description="the first 1,000 invalid rows")
    failure_reason: str | None = Field(description="why the import failed (status failed)")
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
