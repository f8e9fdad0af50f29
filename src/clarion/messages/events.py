"""Message events (`message.sent`, `.delivered`, `.read`, `.failed`, `.expired`, and
`message.clicked`) into the hooks' outbox: one INSERT … SELECT per 500 messages a
transition just moved (or whose links were just clicked), in its transaction, joined with
the hooks that want each event (none: nothing written), one outbox row per hook."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from clarion.db.params import id_in
from clarion.hooks import outbox
from clarion.hooks.models import Hook
from clarion.messages.models import Message
from clarion.schemas import utc_z


async def record(session: AsyncSession, message_ids: Sequence[int], now: datetime) -> None:
    """One event per message of `message_ids` whose status is an event, typed by the status
    it has now (call it after the transition's UPDATE)."""
    await _record(session, message_ids, now, literal("message.") + Message.status, statuses=True)


async def record_clicked(session: AsyncSession, message_ids: Sequence[int], now: datetime) -> None:
    """One `message.clicked` event per message of `message_ids` (the messages whose links
    were clicked in one committed batch of clicks)."""
    await _record(session, message_ids, now, literal("message.clicked"), statuses=False)


async def _record(
    session: AsyncSession,
    message_ids: Sequence[int],
    now: datetime,
    event_type: Any,
    *,
    statuses: bool,
) -> None:
    if not message_ids:
        return
    build = outbox.json_object(session)
    at = utc_z(now)
    data = build(
        "messageId", Message.id,
        "campaignId", Message.campaign_id,
        "contactId", Message.contact_id,
        "phone", Message.phone,
        "channel", Message.channel,
        "status", Message.status,
        "errorCode", Message.error_code,
        "at", literal(at, String),
    )  # fmt: skip
    only_events = [Message.status.in_(outbox.MESSAGE_EVENT_STATUSES)] if statuses else []

    def rows_for(part: Sequence[int]) -> Select[Any]:
        return (
            select(Hook.id, Message.account_id, event_type, data, Message.id)
            .select_from(Message)
            .join(Hook, outbox.subscribed(Message.account_id, event_type))
            .where(id_in(session, Message.id, part), *only_events)
        )

    await outbox.insert_events(session, message_ids, rows_for, now)
