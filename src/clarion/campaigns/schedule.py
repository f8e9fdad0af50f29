"""What the account's compliance rules change in an estimate: contacts left out by the
frequency cap, and when the recipients may be sent to (`schedule`).

The schedule groups the recipients in SQL by what decides their sending hours: country,
the contact's own time zone and region, and the first seven characters of the number (the
country code and area code that the zone and region of a number are derived from). The
number of groups is small whatever the audience; each is decided once in Python. Without
sending hours (none set, or a transactional campaign) every priced recipient is sendable
now: the pricing's counts say so without reading the audience again."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience.models import Contact
from clarion.campaigns import repository
from clarion.campaigns.audience import audience_of
from clarion.campaigns.models import Campaign
from clarion.compliance import service as compliance
from clarion.compliance.hours import Window, constraints_for, next_allowed
from clarion.compliance.places import NUMBER_PREFIX, place_of
from clarion.compliance.settings import ComplianceSettings, FrequencyCap


def applies(campaign: Campaign) -> bool:
    return campaign.purpose == "marketing"


async def settings_of(session: AsyncSession, campaign: Campaign) -> ComplianceSettings:
    return await compliance.settings_for(session, campaign.account_id)


def cap_filter(
    campaign: Campaign, settings: ComplianceSettings, now: datetime
) -> repository.CapFilter | None:
    cap = settings.frequency_cap
    if not applies(campaign) or cap is None:
        return None
    return cap_window(cap, now)


def cap_window(cap: FrequencyCap, now: datetime) -> repository.CapFilter:
    """The account's cap as the audience statements read it: its count since the start of
    the period ending `now`."""
    return repository.CapFilter(now - timedelta(hours=cap.period_hours), cap.messages)


def state(campaign: Campaign, settings: ComplianceSettings, now: datetime) -> list[Any]:
    """What the estimate's compliance figures depend on, for the estimate's fingerprint:
    the rules, and the minute when a rule depends on time."""
    window = campaign.send_window
    timed = applies(campaign) and bool(settings.sending_hours or window or settings.frequency_cap)
    return [
        campaign.purpose,
        window,
        repr(settings.sending_hours),
        repr(settings.frequency_cap),
        now.strftime("%Y-%m-%dT%H:%M") if timed else None,
    ]


async def schedule(
    session: AsyncSession,
    campaign: Campaign,
    settings: ComplianceSettings,
    priced: Mapping[str, int],
    cap: repository.CapFilter | None,
    now: datetime,
    *,
    need_consent: bool = False,
) -> dict[str, Any]:
    """`{sendableNow, held, firstSendAt, lastWindowOpensAt}` over the priced recipients
    (`priced`: how many per priced country; `need_consent`: the contacts without granted
    consent are no recipients, as in the pricing)."""
    window = Window.of(**campaign.send_window) if campaign.send_window else None
    sendable, held = 0, 0
    first: datetime | None = None
    last: datetime | None = None
    hours = applies(campaign) and bool(settings.sending_hours or window)
    if not hours:
        # Every priced recipient may go now, and the pricing counted them: no second pass
        # over the audience (a million contacts read again) to learn nothing more.
        sendable = sum(priced.values())
        first = last = now if sendable else None
        return {"sendableNow": sendable, "held": 0, "firstSendAt": first, "lastWindowOpensAt": last}
    values = (
        [
            (Contact.timezone, Contact.timezone),
            (Contact.region, Contact.region),
            (func.min(Contact.phone), func.substr(Contact.phone, 1, NUMBER_PREFIX)),
        ]
        if hours
        else []
    )
    async for chunk in repository.stream_recipient_groups(
        session, audience_of(campaign), campaign.channel, values, cap=cap, need_consent=need_consent
    ):
        for row in chunk:
            fields = list(row)
            country, n = str(fields[0]), int(fields[-1])
            if country not in priced:
                continue
            opens: datetime | None = now
            if hours:
                timezone, region, phone = fields[1], fields[2], str(fields[3])
                place = place_of(phone, country, timezone, region)
                opens = next_allowed(
                    constraints_for(settings.sending_hours, window, place), place, now
                )
            if opens is not None and opens <= now:
                sendable += n
            else:
                held += n
            if opens is not None:
                first = opens if first is None else min(first, opens)
                last = opens if last is None else max(last, opens)
    return {
        "sendableNow": sendable,
        "held": held,
        "firstSendAt": first,
        "lastWindowOpensAt": last,
    }
