"""Contact events (`contact.opted_out`, `contact.opted_in`) and `import.completed` into the
hooks' outbox, in the transaction of the change (one INSERT … SELECT per 500 contacts of an
opt-out change)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from clarion.audience.models import Contact, ContactImport
from clarion.audience.schemas import ImportOut
from clarion.db.params import id_in
from clarion.hooks import outbox
from clarion.hooks.models import Hook


async def opt_changed(
    session: AsyncSession, contact_ids: Sequence[int], channel: str, event_type: str, now: datetime
) -> None:
    """One `event_type` event per contact: `{"contactId", "phone", "channel"}`."""
    if not contact_ids:
        return
    data = outbox.json_object(session)(
        "contactId", Contact.id, "phone", Contact.phone, "channel", literal(channel, String)
    )  # fmt: skip

    def rows_for(part: Sequence[int]) -> Select[Any]:
        return (
            select(Hook.id, Contact.account_id, literal(event_type), data, Contact.id)
            .select_from(Contact)
            .join(Hook, outbox.subscribed(Contact.account_id, literal(event_type)))
            .where(id_in(session, Contact.id, part))
        )

    await outbox.insert_events(session, contact_ids, rows_for, now)


async def import_completed(session: AsyncSession, contact_import: ContactImport) -> None:
    """`import.completed` when an import finishes (`status` done or failed); `data` is the
    import as `GET /imports/{id}` shows it."""
    data = ImportOut.model_validate(contact_import).model_dump(mode="json", by_alias=True)
    at = contact_import.finished_at
    assert at is not None
    await outbox.record_event(session, contact_import.account_id, "import.completed", data, at)
