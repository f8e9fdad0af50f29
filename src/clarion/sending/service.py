"""Rules of the sending routes: per-recipient results and test sends."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarion import csvsafe
from clarion.audience.phones import InvalidPhone, normalize_fast
from clarion.campaigns.models import Campaign
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.errors import NotFound, Unprocessable
from clarion.links import repository as links_repository
from clarion.messages import transitions
from clarion.messages.models import Message
from clarion.money import from_units
from clarion.providers.base import Provider
from clarion.sending import repository as repo
from clarion.sending.dispatcher import Dispatcher, Pending
from clarion.sending.engine import lease_owner
from clarion.sending.schemas import MessageOut, TestSendResult

CSV_FIELDS = [
    "id",
    "contactId",
    "phone",
    "channel",
    "status",
    "units",
    "price",
    "providerMessageId",
    "errorCode",
    "errorMessage",
    "sentAt",
    "deliveredAt",
    "readAt",
    "updatedAt",
    "notBefore",
    "variant",
    "clicks",
    "firstClickedAt",
]


async def get_campaign(session: AsyncSession, account_id: int, campaign_id: int) -> Campaign:
    campaign = (
        await session.execute(
            select(Campaign).where(
                Campaign.id == campaign_id,
                Campaign.account_id == account_id,
                Campaign.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if campaign is None:
        raise NotFound("Campaign not found.")
    return campaign


def _recipients(campaign_id: int, status: str | None) -> Select[Any]:
    # Test sends (no contact) are not recipients: they are answered by POST .../test.
    stmt = select(Message).where(
        Message.campaign_id == campaign_id, Message.contact_id.is_not(None)
    )
    return stmt.where(Message.status == status) if status else stmt


async def list_messages(
    session: AsyncSession, campaign_id: int, status: str | None, limit: int, offset: int
) -> tuple[list[Message], int]:
    stmt = _recipients(campaign_id, status)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = await session.execute(stmt.order_by(Message.id).limit(limit).offset(offset))
    return list(rows.scalars()), int(total)


async def clicks_of(
    session: AsyncSession, campaign: Campaign, messages: list[Message]
) -> dict[int, tuple[int, datetime | None]]:
    """(clicks, first click) of the listed messages that have tracked links."""
    if not campaign.track_links:
        return {}
    return await links_repository.clicks_of_messages(session, campaign.id, [m.id for m in messages])


def message_out(message: Message, clicks: tuple[int, datetime | None] | None) -> MessageOut:
    out = MessageOut.model_validate(message)
    if clicks is not None:
        out.clicks, out.first_clicked_at = clicks
    return out


async def messages_csv(
    db: Database, campaign_id: int, status: str | None, page: int = 5000
) -> AsyncIterator[str]:
    """Every matching row as CSV, read in keyset pages with a short read transaction each,
    so a million-row export neither holds a transaction open nor the rows in memory."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)  # cells carry contact and provider text
    writer.writerow(CSV_FIELDS)
    yield buffer.getvalue()
    after = 0
    while True:
        async with db.session(write=False) as session:
            rows = list(
                (
                    await session.execute(
                        _recipients(campaign_id, status)
                        .where(Message.id > after)
                        .order_by(Message.id)
                        .limit(page)
                    )
                ).scalars()
            )
            clicks = await links_repository.clicks_of_messages(
                session, campaign_id, [m.id for m in rows]
            )
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for m in rows:
            out = message_out(m, clicks.get(m.id)).model_dump(mode="json", by_alias=True)
            writer.writerow(["" if out[f] is None else out[f] for f in CSV_FIELDS])
        after = rows[-1].id
        yield buffer.getvalue()


def normalize_phones(phones: list[str]) -> list[tuple[str, str]]:
    """(E.164, country) for each phone, read as contacts' phones are, or 422 listing the bad
    ones."""
    out, errors = [], []
    for i, raw in enumerate(phones):
        try:
            out.append(normalize_fast(raw, None))
        except InvalidPhone as exc:
            errors.append(
                {
                    "field": f"phones.{i}",
                    "message": f"{raw!r} is not a valid phone number in international format "
                    f"({exc.reason}).",
                }
            )
    if errors:
        raise Unprocessable("Some phone numbers are not valid.", errors=errors)
    return list(dict.fromkeys(out))


def normalize_phone_filter(raw: str) -> str:
    """A phone to filter on, in E.164 as messages store it, or 422 (field `phone`)."""
    try:
        return normalize_fast(raw, None)[0]
    except InvalidPhone as exc:
        raise Unprocessable(
            f"{raw!r} is not a valid phone number in international format ({exc.reason}).",
            field="phone",
        ) from None


@dataclass(slots=True)
class TestTarget:
    id: int
    account_id: int
    channel: str


async def test_send(
    settings: Settings,
    db: Database,
    providers: dict[str, Provider],
    campaign: TestTarget,
    phones: list[tuple[str, str]],
) -> list[TestSendResult]:
    """Send the campaign's message to a few phones now. The messages are recorded (without
    a contact: they are not recipients and do not count in the campaign's stats) and charged
    to the account's available credits, not to the campaign's reservation."""
    owner = "test:" + lease_owner()
    now = utcnow()
    async with db.transaction() as session:
        rows = [
            Message(
                campaign_id=campaign.id,
                account_id=campaign.account_id,
                contact_id=None,
                phone=phone,
                country=country,
                channel=campaign.channel,
                status="sending",
                lease_owner=owner,
                lease_until=now + timedelta(seconds=settings.lease_seconds),
                next_attempt_at=now,
            )
            for phone, country in phones
        ]
        session.add_all(rows)
        await session.flush()
        claimed = [
            transitions.Claimed(m.id, m.campaign_id, None, m.phone, m.country, m.channel, 0)
            for m in rows
        ]
    dispatcher = Dispatcher(settings, db, providers, owner)
    pending = await dispatcher.prepare(claimed)
    await _refuse_unaffordable(db, campaign.account_id, pending)
    await dispatcher.submit(pending)
    for p in pending:  # a test send answers now: no retry later
        if p.outcome is not None and p.outcome.status == "queued":
            p.outcome.status = "failed"
            p.outcome.error_code = p.outcome.error_code or "provider_unavailable"
    await dispatcher.record(pending)
    results = []
    for p in pending:
        o = p.outcome
        assert o is not None
        results.append(
            TestSendResult(
                phone=p.claimed.phone,
                message_id=p.claimed.id,
                channel=o.channel,
                status="sent" if o.status == "sent" else "failed",
                units=o.units if o.status == "sent" else 0,
                price=from_units(o.price if o.status == "sent" else 0),
                provider_message_id=o.provider_message_id,
                error_code=o.error_code,
                error_message=o.error_message,
            )
        )
    return results


async def _refuse_unaffordable(db: Database, account_id: int, pending: list[Pending]) -> None:
    """Do not hand over test messages the account cannot pay for (worst case: the priced
    channel; an RCS fallback to SMS is re-checked when recorded)."""
    async with db.session(write=False) as session:
        available = await repo.available_credits(session, account_id)
    for p in pending:
        if p.outcome is not None or p.priced is None:
            continue
        if p.priced.price > available:
            p.outcome = transitions.Outcome(
                id=p.claimed.id,
                status="failed",
                channel=p.claimed.channel,
                error_code="insufficient_credits",
                error_message="Not enough available credits for this test message.",
            )
        else:
            available -= p.priced.price
