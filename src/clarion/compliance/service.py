"""The rules of the compliance settings: defaults, validation across fields, and
`settings_for`, which every other domain reads them through."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.compliance import repository
from clarion.compliance.models import ComplianceSettingsRow
from clarion.compliance.schemas import ComplianceIn, keyword_key
from clarion.compliance.settings import (
    DEFAULTS,
    ComplianceSettings,
    FrequencyCap,
    SendingHours,
)
from clarion.errors import Unprocessable

__all__ = ["ComplianceSettings", "settings_for", "update_settings"]

_KEYWORD_LISTS = ("opt_out_keywords", "opt_in_keywords", "help_keywords")
_CAMEL = {
    "opt_out_keywords": "optOutKeywords",
    "opt_in_keywords": "optInKeywords",
    "help_keywords": "helpKeywords",
}


def _from_row(row: ComplianceSettingsRow) -> ComplianceSettings:
    cap = (
        FrequencyCap(row.cap_messages, row.cap_period_hours)
        if row.cap_messages is not None and row.cap_period_hours is not None
        else None
    )
    return ComplianceSettings(
        sending_hours=tuple(
            SendingHours(
                country=r["country"],
                region=r.get("region"),
                days=frozenset(r["days"]),
                start=r["start"],
                end=r["end"],
                holidays=bool(r.get("holidays", True)),
            )
            for r in row.sending_hours
        ),
        frequency_cap=cap,
        require_consent=row.require_consent,
        opt_out_keywords=tuple(row.opt_out_keywords),
        opt_in_keywords=tuple(row.opt_in_keywords),
        help_keywords=tuple(row.help_keywords),
        opt_out_reply=row.opt_out_reply,
        opt_in_reply=row.opt_in_reply,
        help_reply=row.help_reply,
    )


async def settings_for(session: AsyncSession, account_id: int) -> ComplianceSettings:
    """The account's compliance settings (the defaults until it saves some)."""
    row = await repository.settings_row(session, account_id)
    return DEFAULTS if row is None else _from_row(row)


def _row_from(account_id: int, settings: ComplianceSettings) -> ComplianceSettingsRow:
    row = ComplianceSettingsRow(account_id=account_id)
    _fill(row, settings)
    return row


def _fill(row: ComplianceSettingsRow, settings: ComplianceSettings) -> None:
    row.sending_hours = [
        {
            "country": r.country,
            "region": r.region,
            "days": [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d in r.days],
            "start": r.start,
            "end": r.end,
            "holidays": r.holidays,
        }
        for r in settings.sending_hours
    ]
    cap = settings.frequency_cap
    row.cap_messages = cap.messages if cap else None
    row.cap_period_hours = cap.period_hours if cap else None
    row.require_consent = settings.require_consent
    row.opt_out_keywords = list(settings.opt_out_keywords)
    row.opt_in_keywords = list(settings.opt_in_keywords)
    row.help_keywords = list(settings.help_keywords)
    row.opt_out_reply = settings.opt_out_reply
    row.opt_in_reply = settings.opt_in_reply
    row.help_reply = settings.help_reply


def _merge(current: ComplianceSettings, change: ComplianceIn) -> ComplianceSettings:
    sent = change.model_fields_set
    values: dict[str, Any] = {
        name: getattr(current, name) for name in ComplianceSettings.__dataclass_fields__
    }
    if "sending_hours" in sent and change.sending_hours is not None:
        values["sending_hours"] = tuple(
            SendingHours(
                country=r.country,
                region=r.region,
                days=frozenset(r.days),
                start=r.start,
                end=r.end,
                holidays=r.holidays,
            )
            for r in change.sending_hours
        )
    if "frequency_cap" in sent:
        cap = change.frequency_cap
        values["frequency_cap"] = FrequencyCap(cap.messages, cap.period_hours) if cap else None
    if "require_consent" in sent and change.require_consent is not None:
        values["require_consent"] = change.require_consent
    for name in _KEYWORD_LISTS:
        words = getattr(change, name)
        if name in sent and words is not None:
            values[name] = tuple(words)
    for name in ("opt_out_reply", "opt_in_reply", "help_reply"):
        if name in sent:
            values[name] = getattr(change, name)
    return ComplianceSettings(**values)


def _check_keywords(settings: ComplianceSettings, sent: set[str]) -> None:
    """A word may be in one list only: an inbound message must mean one thing."""
    owner: dict[str, str] = {}
    errors = []
    for name in _KEYWORD_LISTS:
        for index, word in enumerate(getattr(settings, name)):
            key = keyword_key(word)
            other = owner.setdefault(key, name)
            if other != name:
                # Blame the list this request sent (the other one may be stored).
                blamed, partner = (
                    (name, other)
                    if name in sent or other not in sent
                    else (
                        other,
                        name,
                    )
                )
                errors.append(
                    {
                        "field": f"{_CAMEL[blamed]}[{index}]" if blamed == name else _CAMEL[blamed],
                        "message": f"{word!r} is also in {_CAMEL[partner]}",
                    }
                )
    if errors:
        raise Unprocessable("A keyword may be in one list only.", errors=errors)


async def update_settings(
    session: AsyncSession, account_id: int, change: ComplianceIn
) -> ComplianceSettings:
    """Apply the fields the request sent; the others keep their value."""
    row = await repository.settings_row_for_update(session, account_id)
    current = DEFAULTS if row is None else _from_row(row)
    merged = _merge(current, change)
    _check_keywords(merged, change.model_fields_set)
    if row is None:
        session.add(_row_from(account_id, merged))
    else:
        _fill(row, merged)
    await session.flush()
    return merged
