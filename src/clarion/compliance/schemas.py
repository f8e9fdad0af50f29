"""The compliance document of `GET/PUT /account/compliance`, validated field by field so
that each error names its path (`sendingHours[1].end`)."""

import re
import unicodedata
from typing import Annotated, Literal

import pycountry
from pydantic import Field, ValidationInfo, field_validator

from clarion.compliance.settings import DAYS, minutes_of
from clarion.schemas import CamelModel, OutModel

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

Keyword = Annotated[str, Field(min_length=1, max_length=50)]
Reply = Annotated[str, Field(min_length=1, max_length=1600)]

MAX_ROWS = 500
MAX_KEYWORDS = 100
MAX_CAP_MESSAGES = 10_000
MAX_CAP_HOURS = 24 * 366


def _country(code: str) -> str:
    code = code.strip().upper()
    if code == "*" or pycountry.countries.get(alpha_2=code) is not None:
        return code
    raise ValueError('must be an ISO 3166-1 alpha-2 country code (such as "FR") or "*"')


def _hhmm(value: str, *, end: bool) -> str:
    if _HHMM.match(value) or (end and value == "24:00"):
        return value
    allowed = '"00:00" to "24:00"' if end else '"00:00" to "23:59"'
    raise ValueError(f'must be a time "HH:MM" from {allowed}')


def keyword_key(word: str) -> str:
    """How inbound text is compared with a keyword: trimmed, upper case, accents dropped,
    trailing punctuation ignored."""
    decomposed = unicodedata.normalize("NFKD", word.strip())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.rstrip(".!?,;: ").upper()


class WindowIn(CamelModel):
    """Days and hours of the recipient's local time when sending is allowed."""

    days: list[Day] = Field(
        min_length=1, max_length=7, description="days sending is allowed, in local time"
    )
    start: str = Field(description='"HH:MM", the first minute sending is allowed (included)')
    end: str = Field(description='"HH:MM", after start, excluded; "24:00" is the end of the day')

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: object) -> object:
        if isinstance(value, list):
            return [d.strip().lower() if isinstance(d, str) else d for d in value]
        return value

    @field_validator("days")
    @classmethod
    def _distinct_days(cls, value: list[Day]) -> list[Day]:
        if len(set(value)) != len(value):
            raise ValueError("must not name a day twice")
        return sorted(value, key=DAYS.index)

    @field_validator("start")
    @classmethod
    def _valid_start(cls, value: str) -> str:
        return _hhmm(value, end=False)

    @field_validator("end")
    @classmethod
    def _valid_end(cls, value: str, info: ValidationInfo) -> str:
        value = _hhmm(value, end=True)
        start = info.data.get("start")
        if start is not None and minutes_of(value) <= minutes_of(start):
            raise ValueError("must be after start (a window never spans midnight: use two rows)")
        return value


class SendingHoursRow(WindowIn):
    country: str = Field(
        max_length=2,
        description='ISO 3166-1 alpha-2 country code, or "*" for every country no row names',
    )
    region: str | None = Field(
        default=None,
        max_length=6,
        description="ISO 3166-2 subdivision of that country (US-FL); the row then applies "
        "to recipients in that region only",
    )
    holidays: bool = Field(
        default=True,
        description="false: no sending on the country's public holidays (default true)",
    )

    @field_validator("country")
    @classmethod
    def _valid_country(cls, value: str) -> str:
        return _country(value)

    @field_validator("region")
    @classmethod
    def _valid_region(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        country = info.data.get("country")
        if country == "*":
            raise ValueError('a region needs a country (not "*")')
        subdivision = pycountry.subdivisions.get(code=value)
        if subdivision is None or (country and subdivision.country_code != country):
            raise ValueError(
                f"must be an ISO 3166-2 subdivision code of {country or 'the country'}"
            )
        return value


class FrequencyCapIn(CamelModel):
    messages: int = Field(ge=1, le=MAX_CAP_MESSAGES, description="marketing messages at most")
    period_hours: int = Field(ge=1, le=MAX_CAP_HOURS, description="in any this many hours")


class ComplianceOut(OutModel):
    sending_hours: list[SendingHoursRow]
    frequency_cap: FrequencyCapIn | None
    require_consent: bool
    opt_out_keywords: list[str]
    opt_in_keywords: list[str]
    help_keywords: list[str]
    opt_out_reply: str | None
    opt_in_reply: str | None
    help_reply: str | None


class ComplianceIn(CamelModel):
    """Fields left out keep their value; a field given replaces it whole (the list of
    `sendingHours` rows, a keyword list...). `null` removes the cap or a reply."""

    sending_hours: list[SendingHoursRow] | None = Field(
        default=None,
        max_length=MAX_ROWS,
        description="rows by country and region; the most specific matching row(s) apply: "
        'region, then country, then "*"; several rows of one scope add up',
    )
    frequency_cap: FrequencyCapIn | None = Field(
        default=None, description="null: no cap (marketing campaigns only)"
    )
    require_consent: bool | None = None
    opt_out_keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    opt_in_keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    help_keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    opt_out_reply: Reply | None = Field(default=None, description="null: no reply")
    opt_in_reply: Reply | None = Field(default=None, description="null: no reply")
    help_reply: Reply | None = Field(default=None, description="null: no reply")

    @field_validator(
        "sending_hours", "require_consent", "opt_out_keywords", "opt_in_keywords", "help_keywords"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Validators run only on fields that were sent: these may be left out, not null
        # (an empty list says "none").
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    @field_validator("opt_out_keywords", "opt_in_keywords", "help_keywords")
    @classmethod
    def _keywords(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: set[str] = set()
        out: list[str] = []
        for word in value:
            key = keyword_key(word)
            if not key:
                raise ValueError(f"{word!r} has no letters or digits")
            if key not in seen:
                seen.add(key)
                out.append(key)
        return out
