"""The rules of contacts and lists."""

from collections.abc import Sequence
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience import consent, optouts, repository
from clarion.audience.consent import Wanted
from clarion.audience.history import Cause
from clarion.audience.models import Contact, ContactList
from clarion.audience.phones import InvalidPhone, normalize_fast
from clarion.audience.repository import UpsertRow
from clarion.audience.schemas import (
    BulkContactRow,
    ConsentOut,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    InvalidRow,
    ListOut,
    MembersAdd,
    MembersAdded,
)
from clarion.db.base import utcnow
from clarion.errors import Conflict, NotFound, Unprocessable


def contact_out(
    contact: Contact, opt_outs: list[str], consents: dict[str, ConsentOut]
) -> ContactOut:
    return ContactOut(
        id=contact.id,
        phone=contact.phone,
        country=contact.country,
        first_name=contact.first_name,
        last_name=contact.last_name,
        attributes=contact.attributes or {},
        consent=consents,
        region=contact.region,
        timezone=contact.timezone,
        opt_outs=opt_outs,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )


async def contacts_out(session: AsyncSession, contacts: Sequence[Contact]) -> list[ContactOut]:
    ids = [c.id for c in contacts]
    opted = await repository.opt_outs_of(session, ids)
    consents = await consent.consents_out(session, ids)
    return [contact_out(c, opted[c.id], consents[c.id]) for c in contacts]


def list_out(row: ContactList, count: int) -> ListOut:
    return ListOut(
        id=row.id,
        name=row.name,
        description=row.description,
        contact_count=count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _phone(raw: str, default_country: str | None) -> tuple[str, str]:
    try:
        return normalize_fast(raw, default_country)
    except InvalidPhone as exc:
        raise Unprocessable(f"Invalid phone number {raw!r}: {exc.reason}.", field="phone") from None


def _duplicate(existing_id: int, phone: str) -> Conflict:
    return Conflict(f"The account already has a contact with phone {phone}.", id=existing_id)


async def require_contact(session: AsyncSession, account_id: int, contact_id: int) -> Contact:
    contact = await repository.contact_of_account(session, account_id, contact_id)
    if contact is None:
        raise NotFound(f"No contact {contact_id}.")
    return contact


async def require_list(session: AsyncSession, account_id: int, list_id: int) -> ContactList:
    row = await repository.list_of_account(session, account_id, list_id)
    if row is None:
        raise NotFound(f"No list {list_id}.")
    return row


async def delete_list(session: AsyncSession, account_id: int, list_id: int) -> None:
    """Delete the account's list (404 when it has none); its contacts stay."""
    await repository.delete_list(session, await require_list(session, account_id, list_id))


async def create_contact(
    session: AsyncSession, account_id: int, body: ContactCreate, cause: Cause, now: datetime
) -> Contact:
    phone, country = _phone(body.phone, body.default_country)
    contact = await repository.insert_contact_unless_phone_exists(
        session,
        {
            "account_id": account_id,
            "phone": phone,
            "country": country,
            "first_name": body.first_name,
            "last_name": body.last_name,
            "attributes": body.attributes,
            "region": body.region,
            "timezone": body.timezone,
        },
    )
    if contact is None:
        existing = await repository.contact_id_with_phone(session, account_id, phone)
        raise _duplicate(existing or 0, phone)
    await consent.set_consents(session, consent.wanted_of(contact.id, body.consent), cause, now)
    return contact


async def update_contact(
    session: AsyncSession,
    account_id: int,
    contact_id: int,
    body: ContactUpdate,
    cause: Cause,
    now: datetime,
) -> Contact:
    contact = await require_contact(session, account_id, contact_id)
    given = body.model_fields_set
    if "phone" in given:
        if body.phone is None:
            raise Unprocessable("phone cannot be null.", field="phone")
        phone, country = _phone(body.phone, body.default_country)
        if phone != contact.phone:
            other = await repository.contact_id_with_phone(session, account_id, phone)
            if other is not None:
                raise _duplicate(other, phone)
            contact.phone, contact.country = phone, country
    if "first_name" in given:
        contact.first_name = body.first_name
    if "timezone" in given:
        contact.timezone = body.timezone
    if "region" in given:
        contact.region = body.region
    if "last_name" in given:
        contact.last_name = body.last_name
    if "attributes" in given:
        if body.attributes is None:
            raise Unprocessable(
                "attributes must be an object (use {} to clear).", field="attributes"
            )
        contact.attributes = body.attributes
    if "region" in given:
        contact.region = body.region
    if "timezone" in given:
        contact.timezone = body.timezone
    if "opt_outs" in given:
        if body.opt_outs is None:
            raise Unprocessable("optOuts must be a list (use [] to clear).", field="optOuts")
        wanted: set[str] = set(body.opt_outs)
        current = set((await repository.opt_outs_of(session, [contact.id]))[contact.id])
        for new_channel in sorted(wanted - current):
            await optouts.opt_out(session, [contact.id], new_channel, cause, at=now)
        for old_channel in sorted(current - wanted):
            await optouts.opt_in(session, [contact.id], old_channel, cause, at=now)
    if "consent" in given:
        await consent.set_consents(session, consent.wanted_of(contact.id, body.consent), cause, now)
    contact.updated_at = utcnow()
    await session.flush()
    return contact


async def delete_contact(session: AsyncSession, account_id: int, contact_id: int) -> None:
    contact = await require_contact(session, account_id, contact_id)
    # The contact leaves its lists: that is a membership change of each.
    await repository.touch_lists(session, await repository.list_ids_of_contact(session, contact.id))
    await repository.delete_contact(session, contact)


def _row_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "row"
    return f"{where}: {str(first.get('msg', 'invalid')).removeprefix('Value error, ')}"


async def add_members(
    session: AsyncSession,
    account_id: int,
    list_id: int,
    body: MembersAdd,
    cause: Cause,
    now: datetime,
) -> MembersAdded:
    """See the route. Rows of `contacts` are upserted first, then `contactIds` are added."""
    if len(body.contact_ids) + len(body.contacts) > 10_000:
        raise Unprocessable(
            "At most 10,000 rows a request (contactIds and contacts together).", field="contacts"
        )
    await require_list(session, account_id, list_id)
    invalid: list[InvalidRow] = []
    rows: dict[str, UpsertRow] = {}
    consents: list[tuple[str, Wanted]] = []  # by phone: the contact may not exist yet
    valid = 0
    for index, raw in enumerate(body.contacts):
        phone_sent = raw.get("phone") if isinstance(raw, dict) else None
        shown = phone_sent if isinstance(phone_sent, str) else None
        try:
            row = BulkContactRow.model_validate(raw)
            phone, country = normalize_fast(row.phone, row.default_country)
        except ValidationError as exc:
            invalid.append(
                InvalidRow(field="contacts", index=index, phone=shown, reason=_row_reason(exc))
            )
            continue
        except InvalidPhone as exc:
            invalid.append(
                InvalidRow(field="contacts", index=index, phone=shown, reason=exc.reason)
            )
            continue
        valid += 1
        # A phone repeated in the request: the later row wins (see merge_rows).
        new = UpsertRow(phone, country, row.first_name, row.last_name, row.attributes)
        rows[phone] = repository.merge_rows(rows.get(phone), new)
        consents.extend((phone, w) for w in consent.wanted_of(0, row.consent))
    added = 0
    if rows:
        result = await repository.upsert_contacts(session, account_id, list(rows.values()), list_id)
        added += result.added
    if consents:
        ids = await repository.contact_ids_by_phone(session, account_id, [p for p, _ in consents])
        wanted = [Wanted(ids[phone], w.channel, w.status, w.at, w.proof) for phone, w in consents]
        await consent.set_consents(session, wanted, cause, now)
    known = await repository.contact_ids_of_account(session, account_id, body.contact_ids)
    good_ids: list[int] = []
    for index, contact_id in enumerate(body.contact_ids):
        if contact_id in known:
            good_ids.append(contact_id)
        else:
            invalid.append(
                InvalidRow(
                    field="contactIds",
                    index=index,
                    phone=None,
                    contact_id=contact_id,
                    reason=f"no contact {contact_id}",
                )
            )
    added += await repository.add_members(session, list_id, good_ids)
    if added:
        await repository.touch_lists(session, [list_id])
    return MembersAdded(added=added, already_members=valid + len(good_ids) - added, invalid=invalid)
