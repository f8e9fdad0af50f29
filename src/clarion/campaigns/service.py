"""Campaign rules: validation, the lifecycle (see states.py), pricing and credits.

Every function runs in the caller's transaction and only flushes. Actions on one campaign
lock its row first (FOR UPDATE on PostgreSQL; SQLite write transactions are serialized), so
two requests on the same campaign apply one after the other, and the second sees the status
the first left.
"""

import hashlib
import json
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.accounts import repository as accounts_repository
from clarion.accounts.models import Account
from clarion.campaigns import abtest, counters, hook_events, repository, schedule, states, wakeups
from clarion.campaigns.audience import audience_of, snapshot
from clarion.campaigns.consent import consent_required
from clarion.campaigns.estimate import (
    Pricing,
    fingerprint,
    message_text,
    price_audience,
    price_variants,
    to_out,
)
from clarion.campaigns.models import Campaign
from clarion.campaigns.schemas import (
    AbTestIn,
    CampaignCreate,
    CampaignUpdate,
    MessageIn,
    StatsOut,
    VariantIn,
    normalize_channel,
)
from clarion.compliance.schemas import WindowIn
from clarion.db.base import utcnow
from clarion.errors import Conflict, NotFound, Unprocessable
from clarion.messages import transitions
from clarion.money import from_units
from clarion.pricing.rates import load_rate_card
from clarion.segments import repository as segments_repository
from clarion.segments.service import parsed_filter
from clarion.templates.models import Template
from clarion.templates.render import unknown_variables

MAX_SMS_PARTS = 10


class ApprovalRequired(Conflict):
    type = "https://clarion.dev/problems/approval-required"
    title = "Approval required"


async def require_campaign(
    session: AsyncSession, account_id: int, campaign_id: int, *, for_update: bool = False
) -> Campaign:
    campaign = await repository.campaign_of(session, account_id, campaign_id, for_update=for_update)
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found.")
    return campaign


def _message(body: MessageIn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.text is not None:
        out["text"] = body.text
    if body.template_id is not None:
        out["templateId"] = body.template_id
    if body.template_params is not None:
        out["templateParams"] = dict(body.template_params)
    return out


def _variants(body: list[VariantIn]) -> list[dict[str, Any]]:
    return [{"name": v.name, "message": _message(v.message)} for v in body]


def _ab_test(body: AbTestIn) -> dict[str, Any]:
    return body.model_dump(mode="json", by_alias=True)


def _set_ab(campaign: Campaign, variants: list[VariantIn] | None, ab: AbTestIn | None) -> None:
    """Make the campaign an A/B campaign (or a plain one, both None). The seed picks its
    test recipients; a new one with each definition."""
    campaign.variants = _variants(variants) if variants is not None else None
    campaign.ab_test = _ab_test(ab) if ab is not None else None
    ab_on = variants is not None or ab is not None
    campaign.ab_seed = secrets.randbelow(2**62) if ab_on else None


async def _check_message(
    session: AsyncSession, campaign: Campaign, msg: dict[str, Any], prefix: str, bad: Any
) -> Template | None:
    """Check one message (the campaign's, or a variant's at `prefix`) against the channel:
    text or template, the template itself, the variables. Returns its template."""
    text, template_id = msg.get("text"), msg.get("templateId")
    channel = campaign.channel
    if channel == "sms":
        if template_id is not None:
            bad(f"{prefix}.templateId", "SMS campaigns send message.text, not a template.")
        if text is None:
            bad(f"{prefix}.text", "An SMS campaign needs message.text.")
    elif channel == "whatsapp":
        if text is not None:
            bad(f"{prefix}.text", "WhatsApp campaigns send a template: use message.templateId.")
        if template_id is None:
            bad(f"{prefix}.templateId", "A WhatsApp campaign needs message.templateId.")
    elif text is not None and template_id is not None:
        bad(prefix, "An RCS campaign takes message.text or message.templateId, not both.")
    elif text is None and template_id is None:
        bad(f"{prefix}.text", "An RCS campaign needs message.text or message.templateId.")

    template: Template | None = None
    if template_id is not None:
        template = await repository.template_of(session, campaign.account_id, template_id)
        if template is None:
            bad(f"{prefix}.templateId", f"Template {template_id} not found.")
        elif template.channel != channel:
            bad(
                f"{prefix}.templateId",
                f"Template {template_id} is a {template.channel} template, not a {channel} one.",
            )
            template = None

    body = text if text is not None else (template.body if template is not None else None)
    if body is not None:
        unknown_vars = list(unknown_variables(body, msg.get("templateParams") or {}))
        if unknown_vars:
            names = ", ".join("{{" + v + "}}" for v in unknown_vars)
            bad(
                f"{prefix}.text" if text is not None else f"{prefix}.templateParams",
                f"Unknown variable(s) {names}: use firstName, lastName, phone, "
                "attributes.NAME, or give a value in message.templateParams.",
            )
    return template


async def validate(session: AsyncSession, campaign: Campaign) -> Template | None:
    """Check the campaign's definition as a whole (after a create or a partial update):
    message (or each A/B variant's, at `variants[i].message`) vs channel, template,
    variables, lists, fallback, the A/B shape. Returns its template, if any (None for an
    A/B campaign: see abtest.variant_templates). Raises 422 listing every bad field."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    abtest.check_shape(campaign, bad)
    template: Template | None = None
    if abtest.is_ab(campaign):
        for i, variant in enumerate(campaign.variants or []):
            await _check_message(
                session, campaign, variant.get("message") or {}, f"variants[{i}].message", bad
            )
    else:
        template = await _check_message(session, campaign, campaign.message or {}, "message", bad)

    if (campaign.ab_test or {}).get("metric") == "uniqueClicks" and not campaign.track_links:
        # Clicks are counted on tracked links: without them every variant would tie.
        bad("abTest.metric", "uniqueClicks counts clicks on tracked links: set trackLinks.")

    channel = campaign.channel
    if campaign.fallback_channel is not None and channel != "rcs":
        bad("fallbackChannel", "fallbackChannel is only allowed on RCS campaigns.")
    if campaign.smart_encoding and channel != "sms":
        bad("smartEncoding", "smartEncoding is only allowed on SMS campaigns.")
    if campaign.track_links and channel == "whatsapp":
        bad("trackLinks", "trackLinks is only allowed on SMS and RCS campaigns.")

    for field, ids in (
        ("listIds", campaign.list_ids),
        ("excludeListIds", campaign.exclude_list_ids),
    ):
        found = await repository.lists_of(session, campaign.account_id, ids)
        unknown = [i for i in dict.fromkeys(ids) if i not in found]
        if unknown:
            bad(field, f"Unknown list id(s): {', '.join(map(str, unknown))}.")

    if errors:
        raise Unprocessable("; ".join(e["message"] for e in errors), errors=errors)
    return template


async def create(
    session: AsyncSession, account_id: int, body: CampaignCreate, link_base: str
) -> Campaign:
    """A new draft. `link_base`: where its short links will point (CLARION_LINK_BASE_URL),
    kept on the campaign so that its estimate counts the links the sender makes."""
    now = utcnow()
    campaign = Campaign(
        account_id=account_id,
        name=body.name,
        channel=body.channel,
        status=states.DRAFT,
        message=_message(body.message) if body.message is not None else {},
        list_ids=list(dict.fromkeys(body.list_ids)),
        exclude_list_ids=list(dict.fromkeys(body.exclude_list_ids)),
        segment_ids=[],
        segment_filters=[],
        audience_filter=None,
        sender=body.sender,
        fallback_channel=body.fallback_channel,
        purpose=body.purpose,
        send_window=_window(body.send_window),
        expires_at=body.expires_at.astimezone(UTC) if body.expires_at else None,
        smart_encoding=body.smart_encoding,
        track_links=body.track_links,
        link_base_url=link_base if body.track_links else None,
        reserved=0,
        spent=0,
        **{c: 0 for c in repository.COUNTERS},
        created_at=now,
        updated_at=now,
    )
    _set_ab(campaign, body.variants, body.ab_test)
    await _target_segments(session, campaign, body.segment_ids)
    campaign.audience_filter = _audience_filter(body.filter)
    await validate(session, campaign)
    session.add(campaign)
    await session.flush()
    return campaign


async def _target_segments(session: AsyncSession, campaign: Campaign, ids: list[int]) -> None:
    """Target these segments, copying their filters as they are now (422 for an id the
    account does not have)."""
    ids = list(dict.fromkeys(ids))
    found = await segments_repository.segments_of(session, campaign.account_id, ids)
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise Unprocessable(
            f"Unknown segment id(s): {', '.join(map(str, unknown))}.", field="segmentIds"
        )
    campaign.segment_ids = ids
    campaign.segment_filters = [snapshot(i, found[i].filter) for i in ids]


def _audience_filter(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if raw is not None:
        parsed_filter(raw)
    return raw


def _check_sendable(campaign: Campaign, template: Template | None) -> None:
    """What confirming needs beyond a valid draft (422)."""
    _check_audience(campaign)
    _check_message_sendable(campaign, campaign.message or {}, template, "message")


def _check_audience(campaign: Campaign) -> None:
    if audience_of(campaign).empty:
        raise Unprocessable(
            "Give at least one of listIds, segmentIds or filter to send.", field="listIds"
        )


def _check_message_sendable(
    campaign: Campaign, message: dict[str, Any], template: Template | None, prefix: str
) -> None:
    if campaign.channel in ("sms", "rcs") and not message_text(campaign, template, message).strip():
        raise Unprocessable("The message is empty.", field=f"{prefix}.text")
    if template is not None and template.status != "approved":
        raise Unprocessable(
            f"Template {template.id} is {template.status}: only an approved template can be sent.",
            field=f"{prefix}.templateId",
        )


async def _check_variants_sendable(session: AsyncSession, campaign: Campaign) -> None:
    templates = await abtest.variant_templates(session, campaign)
    for i, (variant, template) in enumerate(zip(campaign.variants or [], templates, strict=True)):
        _check_message_sendable(
            campaign, variant.get("message") or {}, template, f"variants[{i}].message"
        )


def _check_priced(campaign: Campaign, pricing: Pricing) -> None:
    if pricing.recipients == 0:
        raise Unprocessable(
            "The audience is empty: nobody in the lists can be sent this message "
            "(after exclusions, opt-outs and unpriced countries).",
            field="listIds",
        )
    too_long = [("message", pricing.max_parts)]
    if pricing.ab is not None:
        too_long = [
            (f"variants[{i}].message", v.pricing.max_parts)
            for i, v in enumerate(pricing.ab.variants)
        ]
    for prefix, parts in too_long:
        if parts is not None and parts > MAX_SMS_PARTS:
            raise Unprocessable(
                f"The SMS text is {parts} parts for some recipients; "
                f"at most {MAX_SMS_PARTS} are allowed.",
                field=f"{prefix}.text",
            )


async def _account(session: AsyncSession, account_id: int) -> Account:
    account = await accounts_repository.get_account(session, account_id, refresh=True)
    if account is None:
        raise NotFound("Account not found.")
    return account


async def _load_card(session: AsyncSession) -> Any:
    return await load_rate_card(session)


async def _price(
    session: AsyncSession,
    campaign: Campaign,
    template: Template | None,
    now: datetime | None = None,
) -> tuple[Pricing, dict[str, Any], str]:
    """Price the campaign now: the pricing, the estimate JSON and the inputs' fingerprint."""
    card = await _load_card(session)
    now = now or utcnow()
    digest, priced = await _digest_and_pricing(session, campaign, template, card, now, price=True)
    assert priced is not None
    pricing, when = priced
    credits = await ledger.credits_of(session, campaign.account_id)
    if credits is None:
        raise NotFound("Account not found.")
    return pricing, to_out(campaign, credits, pricing, now, when), digest


async def _digest_and_pricing(
    session: AsyncSession,
    campaign: Campaign,
    template: Template | None,
    card: Any,
    now: datetime,
    *,
    price: bool,
) -> tuple[str, tuple[Pricing, dict[str, Any]] | None]:
    """The fingerprint of the estimate's inputs (compliance rules included, and the minute
    when the sending hours or the cap make the figures depend on time) and, when `price`,
    the pricing with its schedule: of the campaign's message, or of its A/B variants
    (estimate.price_variants). Contacts over the frequency cap are left out like the opted
    out; the schedule says when the rest may be sent (the sending hours)."""
    settings = await schedule.settings_of(session, campaign)
    extra = json.dumps(schedule.state(campaign, settings, now), default=str)
    templates = await abtest.variant_templates(session, campaign) if abtest.is_ab(campaign) else []
    if abtest.is_ab(campaign):
        base = await fingerprint(session, campaign, None, card, templates)
    else:
        base = await fingerprint(session, campaign, template, card)
    digest = hashlib.sha256(f"{base}:{extra}".encode()).hexdigest()
    if not price:
        return digest, None
    cap = schedule.cap_filter(campaign, settings, now)
    if abtest.is_ab(campaign):
        pricing = await price_variants(session, campaign, templates, card, cap=cap)
    else:
        pricing = await price_audience(session, campaign, template, card, cap=cap)
    priced: dict[str, int] = {}
    for (country, _), bucket in pricing.buckets.items():
        priced[country] = priced.get(country, 0) + bucket.recipients
    need_consent = await consent_required(session, campaign.account_id, campaign.purpose)
    when = await schedule.schedule(
        session, campaign, settings, priced, cap, now, need_consent=need_consent
    )
    return digest, (pricing, when)


async def _reprice_and_reserve(
    session: AsyncSession,
    campaign: Campaign,
    template: Template | None,
    now: datetime | None = None,
) -> None:
    """Price a campaign about to hold credits and move its reservation to the new amount:
    the old reservation is released and the new one taken in this transaction, so a 402
    (raised by ledger.reserve) rolls both back and nothing changes."""
    if abtest.is_ab(campaign):
        _check_audience(campaign)
        await _check_variants_sendable(session, campaign)
    else:
        _check_sendable(campaign, template)
    pricing, estimate, digest = await _price(session, campaign, template, now)
    _check_priced(campaign, pricing)
    if campaign.reserved:
        await ledger.release(
            session, campaign.account_id, campaign.id, campaign.reserved, note="re-priced"
        )
        campaign.reserved = 0
    await ledger.reserve(
        session, campaign.account_id, campaign.id, pricing.reserve, note="campaign confirmed"
    )
    campaign.reserved = pricing.reserve
    campaign.estimate = estimate
    campaign.estimate_fingerprint = digest


async def update(
    session: AsyncSession, account_id: int, campaign_id: int, body: CampaignUpdate, link_base: str
) -> Campaign:
    """Partial update, in `draft` or `scheduled` (409 otherwise). A scheduled campaign is
    re-priced and its reservation replaced atomically (402 and nothing changed when the new
    price does not fit)."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    states.require("update", campaign.status)
    given = body.model_fields_set
    for name in (
        "name",
        "channel",
        "message",
        "list_ids",
        "exclude_list_ids",
        "segment_ids",
        "smart_encoding",
        "track_links",
    ):
        if name in given and getattr(body, name) is None:
            raise Unprocessable(f"{name} may not be null.", field=_camel(name))
    if "name" in given:
        campaign.name = body.name  # type: ignore[assignment]
    if "channel" in given:
        campaign.channel = body.channel  # type: ignore[assignment]
    if "message" in given:
        assert body.message is not None
        campaign.message = _message(body.message)
        if "variants" not in given and "ab_test" not in given:
            _set_ab(campaign, None, None)  # a message replaces the A/B variants
    if "variants" in given or "ab_test" in given:
        variants = body.variants if "variants" in given else None
        ab = body.ab_test if "ab_test" in given else None
        if "variants" not in given and campaign.variants:
            variants = [VariantIn.model_validate(v) for v in campaign.variants]
        if "ab_test" not in given and campaign.ab_test:
            ab = AbTestIn.model_validate(campaign.ab_test)
        _set_ab(campaign, variants, ab)
        if "variants" in given and body.variants is not None and "message" not in given:
            campaign.message = {}  # the variants replace the message
    if "list_ids" in given:
        campaign.list_ids = list(dict.fromkeys(body.list_ids or []))
    if "exclude_list_ids" in given:
        campaign.exclude_list_ids = list(dict.fromkeys(body.exclude_list_ids or []))
    if "segment_ids" in given:
        await _target_segments(session, campaign, body.segment_ids or [])
    if "filter" in given:
        campaign.audience_filter = _audience_filter(body.filter)
    if "sender" in given:
        campaign.sender = body.sender
    if "fallback_channel" in given:
        campaign.fallback_channel = body.fallback_channel
    if "purpose" in given:
        if body.purpose is None:
            raise Unprocessable("purpose may not be null.", field="purpose")
        campaign.purpose = body.purpose
    if "send_window" in given:
        campaign.send_window = _window(body.send_window)
    if "expires_at" in given:
        campaign.expires_at = body.expires_at.astimezone(UTC) if body.expires_at else None
    if "smart_encoding" in given:
        campaign.smart_encoding = bool(body.smart_encoding)
    if "track_links" in given:
        campaign.track_links = bool(body.track_links)
    # The links will be made under the base in force now (re-priced with it below).
    campaign.link_base_url = link_base if campaign.track_links else None
    if "scheduled_at" in given:
        if campaign.status != states.SCHEDULED:
            raise Unprocessable(
                "A draft is scheduled with PUT /campaigns/{id}/confirm.", field="scheduledAt"
            )
        if body.scheduled_at is None or body.scheduled_at <= utcnow():
            raise Unprocessable("scheduledAt must be in the future.", field="scheduledAt")
        campaign.scheduled_at = body.scheduled_at.astimezone(UTC)
    template = await validate(session, campaign)
    if campaign.status == states.SCHEDULED:
        await _reprice_and_reserve(session, campaign, template)
    campaign.updated_at = utcnow()
    await session.flush()
    return campaign


def _window(window: WindowIn | None) -> dict[str, Any] | None:
    return None if window is None else window.model_dump(mode="json")


def _check_expiry(campaign: Campaign, starts: datetime) -> None:
    """A campaign that would expire before it may send anything is refused at confirm."""
    if campaign.expires_at is not None and campaign.expires_at <= starts:
        raise Unprocessable(
            "expiresAt must be after the time the campaign starts sending.", field="expiresAt"
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def confirm(
    session: AsyncSession,
    account_id: int,
    campaign_id: int,
    scheduled_at: datetime | None,
    priced_at: datetime | None = None,
) -> Campaign:
    """Price, reserve and move to `sending` (now) or `scheduled` (future `scheduledAt`).
    409 `approval-required` when the account has campaigns approved instead."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    if (await _account(session, account_id)).approval_required:
        raise ApprovalRequired(
            "This account requires approval: submit the campaign "
            "(PUT /campaigns/{id}/submit) and have another person approve it."
        )
    return await confirm_locked(
        session, campaign, scheduled_at, action="confirm", priced_at=priced_at
    )


async def confirm_locked(
    session: AsyncSession,
    campaign: Campaign,
    scheduled_at: datetime | None,
    *,
    action: str,
    priced_at: datetime | None = None,
) -> Campaign:
    """Confirm a campaign whose row the caller locked, by `action` (confirm, or approve of a
    submitted campaign): the same pricing, reservation and status change either way.
    `priced_at`: the instant the compliance rules of the price are read at (the app's
    clock; default now)."""
    target = states.SCHEDULED if scheduled_at is not None else states.SENDING
    states.require(action, campaign.status, target)
    now = utcnow()
    if scheduled_at is not None and scheduled_at <= now:
        raise Unprocessable("scheduledAt must be in the future.", field="scheduledAt")
    _check_expiry(campaign, scheduled_at or now)
    template = await validate(session, campaign)
    await _reprice_and_reserve(session, campaign, template, priced_at)
    campaign.status = target
    campaign.confirmed_at = now
    campaign.updated_at = now
    if scheduled_at is not None:
        campaign.scheduled_at = scheduled_at.astimezone(UTC)
    else:
        campaign.started_at = now
    await session.flush()
    if target == states.SENDING:
        await hook_events.record(session, [campaign], "campaign.started", now)
    await wakeups.engine_has_work(session)  # to start it, or to time its start
    return campaign


async def calculate_goal(
    session: AsyncSession, account_id: int, campaign_id: int, now: datetime | None = None
) -> dict[str, Any]:
    """Price the audience as it would be sent now. The estimate is stored on a draft or
    scheduled campaign; once a campaign is sending (or done) its stored estimate is the one
    its reservation was based on and is kept, and the fresh one is only returned."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    template = await validate(session, campaign)
    _, estimate, digest = await _price(session, campaign, template, now)
    if campaign.status in (states.DRAFT, states.SCHEDULED):
        campaign.estimate = estimate
        campaign.estimate_fingerprint = digest
        await session.flush()
    return estimate


async def price(session: AsyncSession, account_id: int, campaign_id: int) -> dict[str, Any]:
    """The stored estimate's figures, re-priced first for a draft or scheduled campaign when
    anything it depends on changed. For a scheduled campaign this only reports: its
    reservation is adjusted by an edit (PUT), never by this GET."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    estimate = campaign.estimate
    if campaign.status in (states.DRAFT, states.SCHEDULED):
        template = await validate(session, campaign)
        card = await _load_card(session)
        now = utcnow()
        digest, _ = await _digest_and_pricing(session, campaign, template, card, now, price=False)
        if estimate is None or digest != campaign.estimate_fingerprint:
            _, estimate, _ = await _price(session, campaign, template, now)
            campaign.estimate = estimate
            campaign.estimate_fingerprint = digest
            await session.flush()
    if estimate is None:
        estimate = await calculate_goal(session, account_id, campaign_id)
    live = counters.live(
        campaign, (await counters.pending(session, [campaign.id])).get(campaign.id)
    )
    return {
        "price": estimate["price"],
        "units": estimate["units"],
        "recipients": estimate["recipients"],
        "computedAt": estimate["computedAt"],
        "reserved": from_units(live["reserved"]),
        "spent": from_units(live["spent"]),
    }


async def decide_winner(
    session: AsyncSession, account_id: int, campaign_id: int, name: str, now: datetime
) -> Campaign:
    """Decide an A/B test now (see abtest.decide_now): 409 once decided or outside sending
    and paused, 422 for an unknown variant."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    await abtest.decide_now(session, campaign, name, now)
    await session.refresh(campaign)
    return campaign


async def _switch(
    session: AsyncSession, account_id: int, campaign_id: int, action: str, to: str
) -> Campaign:
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    states.require(action, campaign.status)
    campaign.status = to
    campaign.updated_at = utcnow()
    await session.flush()
    if to == states.PAUSED:
        await hook_events.record(session, [campaign], "campaign.paused", campaign.updated_at)
    return campaign


async def pause(session: AsyncSession, account_id: int, campaign_id: int) -> Campaign:
    """sending -> paused: the engine stops claiming its messages; in-flight ones finish."""
    return await _switch(session, account_id, campaign_id, "pause", states.PAUSED)


async def resume(session: AsyncSession, account_id: int, campaign_id: int) -> Campaign:
    """paused -> sending: the engine claims its queued messages again."""
    campaign = await _switch(session, account_id, campaign_id, "resume", states.SENDING)
    await wakeups.engine_has_work(session)
    return campaign


async def _cancel(session: AsyncSession, campaign: Campaign) -> None:
    """Cancel: queued messages become `skipped` (one UPDATE, counters moved in step); the
    reservation is released now unless a message is in flight, in which case the engine
    settles it when the last in-flight message is recorded."""
    states.require("cancel", campaign.status)
    now = utcnow()
    if campaign.status in (states.SENDING, states.PAUSED):
        await transitions.skip_queued(session, campaign.id)
    campaign.status = states.CANCELLED
    campaign.cancelled_at = now
    campaign.updated_at = now
    await session.flush()
    if await transitions.in_flight(session, campaign.id) == 0:
        await ledger.settle(session, campaign.account_id, campaign.id, note="campaign cancelled")
        # The row is ours (locked above): fold what the engine appended, then zero it.
        await counters.fold(session, campaign.id, locked=True)
        await session.refresh(campaign)
        campaign.reserved = 0
        campaign.completed_at = now  # else the engine sets it once nothing is in flight
    await session.flush()
    await session.refresh(campaign)
    await hook_events.record(session, [campaign], "campaign.cancelled", now)


async def cancel(session: AsyncSession, account_id: int, campaign_id: int) -> Campaign:
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    await _cancel(session, campaign)
    return campaign


async def delete(session: AsyncSession, account_id: int, campaign_id: int) -> None:
    """Soft delete (the ledger and the stats keep its history): allowed in draft, scheduled
    (cancelled first, credits released), completed and cancelled; 409 while sending/paused."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    states.require("delete", campaign.status)
    if campaign.status == states.SCHEDULED:
        await _cancel(session, campaign)
    campaign.deleted_at = utcnow()
    await session.flush()


def _parse_day(value: str | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{field} must be a date, YYYY-MM-DD.", field=field) from None


def _counters(sums: Any) -> dict[str, Any]:
    values: dict[str, Any] = {c: int(sums[c]) for c in repository.COUNTERS}
    done = values["sent"] + values["delivered"] + values["read"] + values["failed"]
    values["campaigns"] = int(sums["campaigns"])
    values["clicks"] = int(sums["clicks"])
    values["uniqueClicks"] = int(sums["unique_clicks"])
    values["creditsSpent"] = from_units(int(sums["spent"]))
    values["deliveryRate"] = (
        round((values["delivered"] + values["read"]) / done, 6) if done else 0.0
    )
    return values


async def stats(
    session: AsyncSession,
    account_id: int,
    from_: str | None,
    to: str | None,
    channel: str | None,
) -> StatsOut:
    """Sums of the campaigns' pre-aggregated counters (see routes.campaign_stats)."""
    start, end = _parse_day(from_, "from"), _parse_day(to, "to")
    if start is not None and end is not None and start > end:
        raise Unprocessable("from must not be after to.", field="from")
    if channel:
        try:
            channel = normalize_channel(channel)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="channel") from None
    else:
        channel = None
    start_at = datetime.combine(start, time(), UTC) if start else None
    end_at = datetime.combine(end + timedelta(days=1), time(), UTC) if end else None
    by_channel, by_day = await repository.stats_rows(session, account_id, start_at, end_at, channel)
    keys = (*repository.COUNTERS, "campaigns", "spent", "clicks", "unique_clicks")
    total = {k: sum(int(row._mapping[k]) for row in by_channel) for k in keys}
    return StatsOut.model_validate(
        {
            "from": start,
            "to": end,
            "channel": channel,
            **_counters(total),
            "byChannel": {row.channel: _counters(row._mapping) for row in by_channel},
            "byDay": [
                {"date": repository.as_date(row.day), **_counters(row._mapping)} for row in by_day
            ],
        }
    )
