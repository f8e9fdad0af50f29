"""The compliance settings as the rest of the service reads them (frozen, snake_case)."""

from dataclasses import dataclass

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names in `datetime.weekday()` order."""

MINUTES_PER_DAY = 24 * 60


def minutes_of(hhmm: str) -> int:
    """ "08:30" -> 510; "24:00" (the end of a day) -> 1440."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class SendingHours:
    """One row: sending is allowed on `days` from `start` (included) to `end` (excluded),
    in the recipient's local time; on the country's public holidays only if `holidays`."""

    country: str  # ISO 3166-1 alpha-2, or "*" for every country no other row names
    region: str | None  # ISO 3166-2 of that country (US-FL), or None for the whole country
    days: frozenset[str]  # of DAYS
    start: str  # "HH:MM"
    end: str  # "HH:MM", after start; "24:00" is midnight at the end of the day
    holidays: bool

    @property
    def start_minute(self) -> int:
        return minutes_of(self.start)

    @property
    def end_minute(self) -> int:
        return minutes_of(self.end)


@dataclass(frozen=True)
class FrequencyCap:
    """At most `messages` marketing messages handed to a provider per contact in any
    `period_hours` before the moment of sending."""

    messages: int
    period_hours: int


@dataclass(frozen=True)
class ComplianceSettings:
    sending_hours: tuple[SendingHours, ...]
    frequency_cap: FrequencyCap | None
    require_consent: bool
    opt_out_keywords: tuple[str, ...]
    opt_in_keywords: tuple[str, ...]
    help_keywords: tuple[str, ...]
    opt_out_reply: str | None
    opt_in_reply: str | None
    help_reply: str | None


DEFAULTS = ComplianceSettings(
    sending_hours=(),
    frequency_cap=None,
    require_consent=False,
    opt_out_keywords=(
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "ARRET",
        "BAJA",
    ),
    opt_in_keywords=("START", "UNSTOP", "YES"),
    help_keywords=("HELP", "INFO"),
    opt_out_reply="You will receive no more messages. Reply START to resubscribe.",
    opt_in_reply="You are subscribed again. Reply STOP to unsubscribe.",
    help_reply=None,
)
"""What a new account starts with: no sending hours, no cap, no consent required, the
usual keywords and replies (presets to review, not legal advice)."""
