"""Campaign rules: validation, the lifecycle (see states.py), pricing and credits.

Every function runs in the caller's transaction and only flushes. Actions on one campaign
lock its row first (FOR UPDATE on PostgreSQL; SQLite write transactions are serialized), so
two requests on the same campaign apply one after the other, and the second sees the status
the first left.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.accounts import ledger
from clarion.accounts import repository as accounts_repository
from clarion.accounts.models import Account
from clarion.campaigns import counters, repository, states, wakeups
from clarion.campaigns.estimate import Pricing, fingerprint, message_text, price_audience, to_out
from clarion.campaigns.models import Campaign
from clarion.campaigns.schemas import (
    CampaignCreate,
    CampaignUpdate,
    MessageIn,
    StatsOut,
    normalize_channel,
)
from clarion.db.base import utcnow
from clarion.errors import Conflict, NotFound, Unprocessable
from clarion.messages import transitions
from clarion.money import from_units
from clarion.pricing.rates import load_rate_card
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


async def validate(session: AsyncSession, campaign: Campaign) -> Template | None:
    """Check the campaign's definition as a whole (after a create or a partial update):
    message vs channel, template, variables, lists, fallback. Returns its template, if any.
    Raises 422 listing every bad field."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    msg = campaign.message or {}
    text, template_id = msg.get("text"), msg.get("templateId")
    channel = campaign.channel
    if channel == "sms":
        if template_id is not None:
            bad("message.templateId", "SMS campaigns send message.text, not a template.")
        if text is None:
            bad("message.text", "An SMS campaign needs message.text.")
    elif channel == "whatsapp":
        if text is not None:
            bad("message.text", "WhatsApp campaigns send a template: use message.templateId.")
        if template_id is None:
            bad("message.templateId", "A WhatsApp campaign needs message.templateId.")
    elif text is not None and template_id is not None:
        bad("message", "An RCS campaign takes message.text or message.templateId, not both.")
    elif text is None and template_id is None:
        bad("message.text", "An RCS campaign needs message.text or message.templateId.")

    template: Template | None = None
    if template_id is not None:
        template = await repository.template_of(session, campaign.account_id, template_id)
        if template is None:
            bad("message.templateId", f"Template {template_id} not found.")
        elif template.channel != channel:
            bad(
                "message.templateId",
                f"Template {template_id} is a {template.channel} template, not a {channel} one.",
            )
            template = None

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

    body = text if text is not None else (template.body if template is not None else None)
    if body is not None:
        unknown_vars = list(unknown_variables(body, msg.get("templateParams") or {}))
        if unknown_vars:
            names = ", ".join("{{" + v + "}}" for v in unknown_vars)
            bad(
                "message.text" if text is not None else "message.templateParams",
                f"Unknown variable(s) {names}: use firstName, lastName, phone, "
                "attributes.NAME, or give a value in message.templateParams.",
            )
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
        message=_message(body.message),
        list_ids=list(dict.fromkeys(body.list_ids)),
        exclude_list_ids=list(dict.fromkeys(body.exclude_list_ids)),
        sender=body.sender,
        fallback_channel=body.fallback_channel,
        smart_encoding=body.smart_encoding,
        track_links=body.track_links,
        link_base_url=link_base if body.track_links else None,
        reserved=0,
        spent=0,
        **{c: 0 for c in repository.COUNTERS},
        created_at=now,
        updated_at=now,
    )
    await validate(session, campaign)
    session.add(campaign)
    await session.flush()
    return campaign


def _check_sendable(campaign: Campaign, template: Template | None) -> None:
    """What confirming needs beyond a valid draft (422)."""
    if not campaign.list_ids:
        raise Unprocessable("Give at least one list in listIds to send.", field="listIds")
    if campaign.channel in ("sms", "rcs") and not message_text(campaign, template).strip():
        raise Unprocessable("The message is empty.", field="message.text")
    if template is not None and template.status != "approved":
        raise Unprocessable(
            f"Template {template.id} is {template.status}: only an approved template can be sent.",
            field="message.templateId",
        )


def _check_priced(campaign: Campaign, pricing: Pricing) -> None:
    if pricing.recipients == 0:
        raise Unprocessable(
            "The audience is empty: nobody in the lists can be sent this message "
            "(after exclusions, opt-outs and unpriced countries).",
            field="listIds",
        )
    if pricing.max_parts is not None and pricing.max_parts > MAX_SMS_PARTS:
        raise Unprocessable(
            f"The SMS text is {pricing.max_parts} parts for some recipients; "
            f"at most {MAX_SMS_PARTS} are allowed.",
            field="message.text",
        )


async def _account(session: AsyncSession, account_id: int) -> Account:
    account = await accounts_repository.get_account(session, account_id, refresh=True)
    if account is None:
        raise NotFound("Account not found.")
    return account


async def _load_card(session: AsyncSession) -> Any:
    return await load_rate_card(session)


async def _price(
    session: AsyncSession, campaign: Campaign, template: Template | None
) -> tuple[Pricing, dict[str, Any], str]:
    """Price the campaign now: the pricing, the estimate JSON and the inputs' fingerprint."""
    card = await _load_card(session)
    digest = await fingerprint(session, campaign, template, card)
    pricing = await price_audience(session, campaign, template, card)
    account = await _account(session, campaign.account_id)
    return pricing, to_out(campaign, account, pricing, utcnow()), digest


async def _reprice_and_reserve(
    session: AsyncSession, campaign: Campaign, template: Template | None
) -> None:
    """Price a campaign about to hold credits and move its reservation to the new amount:
    the old reservation is released and the new one taken in this transaction, so a 402
    (raised by ledger.reserve) rolls both back and nothing changes."""
    _check_sendable(campaign, template)
    pricing, estimate, digest = await _price(session, campaign, template)
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
    if "list_ids" in given:
        campaign.list_ids = list(dict.fromkeys(body.list_ids or []))
    if "exclude_list_ids" in given:
        campaign.exclude_list_ids = list(dict.fromkeys(body.exclude_list_ids or []))
    if "sender" in given:
        campaign.sender = body.sender
    if "fallback_channel" in given:
        campaign.fallback_channel = body.fallback_channel
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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def confirm(
    session: AsyncSession, account_id: int, campaign_id: int, scheduled_at: datetime | None
) -> Campaign:
    """Price, reserve and move to `sending` (now) or `scheduled` (future `scheduledAt`).
    409 `approval-required` when the account has campaigns approved instead."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    if (await _account(session, account_id)).approval_required:
        raise ApprovalRequired(
            "This account requires approval: submit the campaign "
            "(PUT /campaigns/{id}/submit) and have another person approve it."
        )
    return await confirm_locked(session, campaign, scheduled_at, action="confirm")


async def confirm_locked(
    session: AsyncSession, campaign: Campaign, scheduled_at: datetime | None, *, action: str
) -> Campaign:
    """Confirm a campaign whose row the caller locked, by `action` (confirm, or approve of a
    submitted campaign): the same pricing, reservation and status change either way."""
    target = states.SCHEDULED if scheduled_at is not None else states.SENDING
    states.require(action, campaign.status, target)
    now = utcnow()
    if scheduled_at is not None and scheduled_at <= now:
        raise Unprocessable("scheduledAt must be in the future.", field="scheduledAt")
    template = await validate(session, campaign)
    await _reprice_and_reserve(session, campaign, template)
    campaign.status = target
    campaign.confirmed_at = now
    campaign.updated_at = now
    if scheduled_at is not None:
        campaign.scheduled_at = scheduled_at.astimezone(UTC)
    else:
        campaign.started_at = now
    await session.flush()
    await wakeups.engine_has_work(session)  # to start it, or to time its start
    return campaign


async def calculate_goal(
    session: AsyncSession, account_id: int, campaign_id: int
) -> dict[str, Any]:
    """Price the audience as it would be sent now. The estimate is stored on a draft or
    scheduled campaign; once a campaign is sending (or done) its stored estimate is the one
    its reservation was based on and is kept, and the fresh one is only returned."""
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    template = await validate(session, campaign)
    _, estimate, digest = await _price(session, campaign, template)
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
        digest = await fingerprint(session, campaign, template, card)
        if estimate is None or digest != campaign.estimate_fingerprint:
            pricing = await price_audience(session, campaign, template, card)
            account = await _account(session, account_id)
            estimate = to_out(campaign, account, pricing, utcnow())
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


async def _switch(
    session: AsyncSession, account_id: int, campaign_id: int, action: str, to: str
) -> Campaign:
    campaign = await require_campaign(session, account_id, campaign_id, for_update=True)
    states.require(action, campaign.status)
    campaign.status = to
    campaign.updated_at = utcnow()
    await session.flush()
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
