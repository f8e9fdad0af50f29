"""Compliance at the moment of sending, inside the claim's transaction: what was just
claimed goes out only if its campaign has not expired, its recipient still grants consent
(marketing under `requireConsent`: consent withdrawn after the audience was materialized
is skipped, `NO_CONSENT`), is inside the sending hours and under the frequency cap. The
others are held until their window opens or skipped, before any provider sees them.

Two campaigns racing for one contact: the cap counts the contact's marketing messages
handed to a provider in the period *and* those claimed by any worker and not yet recorded
(`sending`), under a per-contact lock held until the claim commits (a PostgreSQL advisory
lock; SQLite's writers are serialized anyway). The second claim therefore waits for the
first and sees its message. A claimed message that then fails at the provider was counted
all the same: the cap errs on the side of sending less, never more."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.compliance import service as compliance
from clarion.compliance.hours import HORIZON_DAYS, Window, constraints_for, next_allowed
from clarion.compliance.places import NUMBER_PREFIX, Place, place_of
from clarion.compliance.settings import ComplianceSettings
from clarion.messages import transitions
from clarion.messages.transitions import EXPIRED_MESSAGE, NO_CONSENT, Claimed, Held, Skip
from clarion.sending import repository as repo

SETTINGS_TTL = 1.0  # seconds an account's compliance settings are reused by one process
CAP_MESSAGE = "The contact reached the account's frequency cap."
CONSENT_MESSAGE = "The contact does not consent to marketing on this channel."


def _campaign(c: Claimed) -> int:
    """The campaign of a claimed campaign message (the gate never sees messages of no
    campaign: keyword replies are claimed apart)."""
    assert c.campaign_id is not None
    return c.campaign_id


class ComplianceGate:
    def __init__(self) -> None:
        self._rules: dict[int, repo.CampaignRules] = {}
        self._settings: dict[int, tuple[ComplianceSettings, float]] = {}

    async def _campaign_rules(
        self, session: AsyncSession, ids: set[int]
    ) -> dict[int, repo.CampaignRules]:
        # A sending campaign's purpose, window and expiry cannot change (edits are for
        # drafts and scheduled campaigns), so they are read once.
        missing = ids - self._rules.keys()
        if missing:
            if len(self._rules) > 1000:
                self._rules.clear()
            self._rules.update(await repo.campaign_rules(session, sorted(missing)))
        return {i: self._rules[i] for i in ids if i in self._rules}

    async def _account_settings(self, session: AsyncSession, account_id: int) -> ComplianceSettings:
        cached = self._settings.get(account_id)
        if cached is not None and time.monotonic() - cached[1] < SETTINGS_TTL:
            return cached[0]
        settings = await compliance.settings_for(session, account_id)
        self._settings[account_id] = (settings, time.monotonic())
        return settings

    @staticmethod
    async def _unconsented(
        session: AsyncSession,
        counted: list[Claimed],
        rules: dict[int, repo.CampaignRules],
        settings: dict[int, ComplianceSettings],
    ) -> set[int]:
        """Ids of the claimed marketing messages of accounts that require consent whose
        contact does not grant it for the channel now."""
        by_channel: dict[str, list[Claimed]] = defaultdict(list)
        for c in counted:
            r = rules.get(_campaign(c))
            if (
                r is not None
                and r.purpose == "marketing"
                and settings[r.account_id].require_consent
            ):
                by_channel[c.channel].append(c)
        out: set[int] = set()
        for channel, items in sorted(by_channel.items()):
            lacking = await repo.without_consent(
                session, [c.contact_id for c in items if c.contact_id is not None], channel
            )
            out.update(c.id for c in items if c.contact_id in lacking)
        return out

    async def screen(
        self, session: AsyncSession, owner: str, claimed: list[Claimed], now: datetime
    ) -> list[Claimed]:
        """The claimed messages that may go now; the others are held or skipped here."""
        counted = [c for c in claimed if c.contact_id is not None]
        if not counted:
            return claimed
        rules = await self._campaign_rules(session, {_campaign(c) for c in counted})
        settings = {
            a: await self._account_settings(session, a)
            for a in sorted({r.account_id for r in rules.values()})
        }
        hours_apply = [
            c
            for c in counted
            if (r := rules.get(_campaign(c))) is not None
            and r.purpose == "marketing"
            and (settings[r.account_id].sending_hours or r.send_window)
        ]
        unconsented = await self._unconsented(session, counted, rules, settings)
        places = await repo.contact_places(
            session, [c.contact_id for c in hours_apply if c.contact_id is not None]
        )
        memo: dict[tuple[int, Window | None, Place], datetime | None] = {}
        held: list[Held] = []
        skips: list[Skip] = []
        capped: dict[int, list[Claimed]] = defaultdict(list)
        passing: set[int] = set()
        for c in claimed:
            r = rules.get(_campaign(c)) if c.contact_id is not None else None
            if r is None:  # a test send, or a campaign gone (the dispatcher fails it)
                passing.add(c.id)
                continue
            if r.expires_at is not None and r.expires_at <= now:
                skips.append(Skip(c.id, _campaign(c), c.contact_id, "EXPIRED", EXPIRED_MESSAGE))
                continue
            if r.purpose != "marketing":
                passing.add(c.id)
                continue
            if c.id in unconsented:
                skips.append(Skip(c.id, _campaign(c), c.contact_id, NO_CONSENT, CONSENT_MESSAGE))
                continue
            account = settings[r.account_id]
            if account.sending_hours or r.send_window:
                timezone, region = places.get(c.contact_id or 0, (None, None))
                place = place_of(c.phone, c.country, timezone, region)
                window = Window.of(**r.send_window) if r.send_window else None
                key = (r.account_id, window, place)
                if key not in memo:
                    memo[key] = next_allowed(
                        constraints_for(account.sending_hours, window, place), place, now
                    )
                opens = memo[key] or now + timedelta(days=HORIZON_DAYS)
                if opens > now:
                    if r.expires_at is not None and opens >= r.expires_at:
                        skips.append(
                            Skip(c.id, _campaign(c), c.contact_id, "EXPIRED", EXPIRED_MESSAGE)
                        )
                    else:
                        held.append(Held(c.id, _campaign(c), c.contact_id, opens))
                    continue
            if account.frequency_cap is not None:
                capped[r.account_id].append(c)
            else:
                passing.add(c.id)
        batch_ids = [c.id for c in claimed]
        for account_id, items in sorted(capped.items()):
            cap = settings[account_id].frequency_cap
            assert cap is not None
            contacts = [c.contact_id for c in items if c.contact_id is not None]
            await repo.lock_contacts_for_cap(session, contacts)
            since = now - timedelta(hours=cap.period_hours)
            sent = await repo.marketing_sent_since(session, account_id, contacts, since)
            flying = await repo.marketing_in_flight(session, account_id, contacts, batch_ids)
            taken: Counter[int] = Counter()
            for c in sorted(items, key=lambda m: m.id):
                who = c.contact_id or 0
                if sent[who] + flying[who] + taken[who] >= cap.messages:
                    skips.append(
                        Skip(c.id, _campaign(c), c.contact_id, "FREQUENCY_CAP", CAP_MESSAGE)
                    )
                else:
                    taken[who] += 1
                    passing.add(c.id)
        await transitions.hold_claimed(session, owner, held, now)
        await transitions.skip_claimed(session, owner, skips, now)
        return [c for c in claimed if c.id in passing]


async def hold_chunk(
    session: AsyncSession, campaign_id: int, after: int, upto: int, now: datetime
) -> int:
    """Give the messages of a chunk just materialized their `not_before` when they are
    outside their sending hours, group by group (country, contact zone and region, number
    prefix), so that the claim never takes them before their window opens."""
    rules = (await repo.campaign_rules(session, [campaign_id])).get(campaign_id)
    if rules is None or rules.purpose != "marketing":
        return 0
    settings = await compliance.settings_for(session, rules.account_id)
    if not (settings.sending_hours or rules.send_window):
        return 0
    window = Window.of(**rules.send_window) if rules.send_window else None
    held = 0
    groups = await repo.materialized_place_groups(session, campaign_id, after, upto, NUMBER_PREFIX)
    for country, timezone, region, prefix, phone in groups:
        place = place_of(phone, country, timezone or None, region or None)
        opens = next_allowed(constraints_for(settings.sending_hours, window, place), place, now)
        opens = opens or now + timedelta(days=HORIZON_DAYS)
        if opens > now:
            group = transitions.PlaceGroup(country, timezone, region, prefix)
            held += await transitions.hold_materialized(
                session, campaign_id, after, upto, group, NUMBER_PREFIX, opens
            )
    return held
