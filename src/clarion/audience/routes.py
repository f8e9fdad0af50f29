"""HTTP routes of contacts, lists and CSV imports."""

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    File,
    Form,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import StreamingResponse

from clarion import csvsafe
from clarion.audience import history, repository, service, tasks
from clarion.audience.history import Cause
from clarion.audience.imports import ImportFailed, TextCheck
from clarion.audience.models import ContactImport, ContactList
from clarion.audience.phones import check_region, digits_only
from clarion.audience.schemas import (
    REGIONS,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    HistoryActor,
    HistoryItem,
    ImportOut,
    ImportStarted,
    ListCreate,
    ListOut,
    ListUpdate,
    MembersAdd,
    MembersAdded,
    MembersRemove,
    MembersRemoved,
)
from clarion.audit import service as audit
from clarion.auth import CurrentAccountId, CurrentPrincipal, request_now
from clarion.db.deps import ReadSessionDep, SessionDep
from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database
from clarion.errors import NotFound, Unprocessable
from clarion.schemas import MAX_ID, Page, PageParams, PathId, page_params

log = logging.getLogger(__name__)
router = APIRouter(tags=["audience"])
PageDep = Annotated[PageParams, Depends(page_params)]

# -- contacts -------------------------------------------------------------------------------


@router.post("/contacts", status_code=201, response_model=ContactOut)
async def create_contact(
    body: ContactCreate, principal: CurrentPrincipal, session: SessionDep, request: Request
) -> ContactOut:
    """Create a contact. The phone is stored in E.164; a national number needs
    `defaultCountry`. An invalid number is 422 (field `phone`); a phone the account already
    has is 409 with the existing contact's `id` in the problem document. `consent` may
    record the contact's consent per channel (written to its history)."""
    contact = await service.create_contact(
        session, principal.account_id, body, Cause.of(principal), request_now(request)
    )
    return (await service.contacts_out(session, [contact]))[0]


@router.get("/contacts", response_model=Page[ContactOut])
async def list_contacts(
    account_id: CurrentAccountId,
    session: ReadSessionDep,
    page: PageDep,
    list_id: Annotated[
        int | None,
        Query(alias="listId", ge=1, le=MAX_ID, description="only members of this list"),
    ] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=100,
            description="part of the phone (digits) or of the name, case-insensitive",
        ),
    ] = None,
) -> Page[ContactOut]:
    """The account's contacts, oldest first. `listId` of a list the account does not have
    is 404."""
    if list_id is not None:
        await service.require_list(session, account_id, list_id)
    search = (search or "").strip() or None
    contacts, total = await repository.contacts_page(
        session,
        account_id,
        list_id=list_id,
        search=search,
        phone_digits=digits_only(search) if search else "",
        limit=page.limit,
        offset=page.offset,
    )
    items = await service.contacts_out(session, contacts)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/contacts/{contact_id}", response_model=ContactOut)
async def get_contact(
    contact_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> ContactOut:
    contact = await service.require_contact(session, account_id, contact_id)
    return (await service.contacts_out(session, [contact]))[0]


@router.put("/contacts/{contact_id}", response_model=ContactOut)
async def update_contact(
    contact_id: PathId,
    body: ContactUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> ContactOut:
    """Partial update: only the fields sent change. `attributes` replaces the object;
    `optOuts` sets the exact list of opted-out channels; `consent` sets the consent of the
    channels it names (`{"sms": {"status": "granted", "proof": "..."}}` or just
    `{"sms": "granted"}`; other channels keep theirs). Every opt-out, opt-in and consent
    change goes to the contact's history with source `api` (an API key) or `console` (a
    signed-in user). A phone another contact has is 409 with that contact's `id`."""
    contact = await service.update_contact(
        session,
        principal.account_id,
        contact_id,
        body,
        Cause.of(principal),
        request_now(request),
    )
    return (await service.contacts_out(session, [contact]))[0]


@router.get("/contacts/{contact_id}/history", response_model=Page[HistoryItem])
async def contact_history(
    contact_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep, page: PageDep
) -> Page[HistoryItem]:
    """Every opt-out, opt-in and consent change of the contact, newest first. `source` says
    where it came from (`api`, `console`, `import`, `inbound`: a keyword or event the person
    sent, `provider`: what a provider reported) and `actor` who caused it (`type` key, user,
    provider or system)."""
    await service.require_contact(session, account_id, contact_id)
    rows, total = await repository.history_page(session, contact_id, page.limit, page.offset)
    items = [
        HistoryItem(
            at=r.created_at,
            kind=history.KINDS[r.action],  # type: ignore[arg-type]
            channel=r.channel,
            source=r.source,
            actor=(
                HistoryActor(type=r.actor_type, id=r.actor_id, name=r.actor_name)
                if r.actor_type
                else None
            ),
            status=r.status,  # type: ignore[arg-type]
            detail=r.detail,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.delete("/contacts/{contact_id}", status_code=204)
async def delete_contact(
    contact_id: PathId, account_id: CurrentAccountId, session: SessionDep
) -> None:
    """Delete the contact (it leaves every list)."""
    await service.delete_contact(session, account_id, contact_id)


# -- lists ----------------------------------------------------------------------------------


async def _list_out(session: ReadSessionDep | SessionDep, row: ContactList) -> ListOut:
    counts = await repository.member_counts(session, [row.id])
    return service.list_out(row, counts[row.id])


@router.post("/lists", status_code=201, response_model=ListOut)
async def create_list(
    body: ListCreate, account_id: CurrentAccountId, session: SessionDep
) -> ListOut:
    row = ContactList(account_id=account_id, name=body.name, description=body.description)
    session.add(row)
    await session.flush()
    return service.list_out(row, 0)


@router.get("/lists", response_model=Page[ListOut])
async def list_lists(
    account_id: CurrentAccountId, session: ReadSessionDep, page: PageDep
) -> Page[ListOut]:
    rows, total = await repository.lists_page(session, account_id, page.limit, page.offset)
    counts = await repository.member_counts(session, [r.id for r in rows])
    items = [service.list_out(r, counts[r.id]) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/lists/{list_id}", response_model=ListOut)
async def get_list(
    list_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> ListOut:
    return await _list_out(session, await service.require_list(session, account_id, list_id))


@router.put("/lists/{list_id}", response_model=ListOut)
async def update_list(
    list_id: PathId, body: ListUpdate, account_id: CurrentAccountId, session: SessionDep
) -> ListOut:
    """Rename or describe the list (partial: only the fields sent change)."""
    row = await service.require_list(session, account_id, list_id)
    given = body.model_fields_set
    if "name" in given:
        if body.name is None:
            raise Unprocessable("name cannot be null.", field="name")
        row.name = body.name
    if "description" in given:
        row.description = body.description
    await session.flush()
    return await _list_out(session, row)


@router.delete("/lists/{list_id}", status_code=204)
async def delete_list(list_id: PathId, account_id: CurrentAccountId, session: SessionDep) -> None:
    """Delete the list; its contacts stay."""
    await service.delete_list(session, account_id, list_id)


@router.post("/lists/{list_id}/contacts", response_model=MembersAdded)
async def add_members(
    list_id: PathId,
    body: MembersAdd,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> MembersAdded:
    """Add members: `contactIds` (existing contacts) and/or `contacts` (upserted by phone:
    a new phone creates a contact, a known one is updated: names replaced when given,
    attributes merged). At most 10,000 rows in all (more is 422).

    Rows are judged one by one and a bad row never rejects the others. Each bad row is an
    entry of `invalid` with `field` ("contacts" or "contactIds", the array it came from),
    `index` (its position in that array, from 0), `phone` (as sent; null for contactIds),
    `contactId` (contactIds rows) and `reason`. A contact id that is unknown or belongs to
    another account is reported the same way ("no contact N"), so ids of other accounts are
    not revealed.

    Counting: every valid row is either `added` (it became a member) or `alreadyMembers`
    (it was one already, or repeated an earlier row of the request), so
    `added + alreadyMembers + len(invalid)` equals the number of rows sent.

    On PostgreSQL, once answered, the statistics of contacts and memberships are refreshed
    when this (with the writes before it) changed a good share of them, so that a campaign
    confirmed next is planned on them.

    A row's `consent` (`{"sms": "granted"}` or `{"sms": {"status", "at"?, "proof"?}}`)
    sets the contact's consent for those channels; a bad one makes the row invalid."""
    added = await service.add_members(
        session, principal.account_id, list_id, body, Cause.of(principal), request_now(request)
    )
    if added.added or body.contacts:
        written = {"contact": len(body.contacts), "list_member": added.added}
        background.add_task(_keep_analyzed, request.app.state.db, written)
    return added


async def _keep_analyzed(db: Database, written: dict[str, int]) -> None:
    try:
        await analyze_if_changed(db, written)
    except Exception:  # statistics are an optimization: the request itself succeeded
        log.exception("ANALYZE after a bulk add failed")


@router.delete("/lists/{list_id}/contacts", response_model=MembersRemoved)
async def remove_members(
    list_id: PathId, body: MembersRemove, account_id: CurrentAccountId, session: SessionDep
) -> MembersRemoved:
    """Remove members (the contacts stay). Ids that are not members are ignored."""
    await service.require_list(session, account_id, list_id)
    removed = await repository.remove_members(session, list_id, body.contact_ids)
    if removed:
        await repository.touch_lists(session, [list_id])
    return MembersRemoved(removed=removed)


@router.get("/lists/{list_id}/contacts", response_model=Page[ContactOut])
async def list_members(
    list_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep, page: PageDep
) -> Page[ContactOut]:
    """The list's members, oldest contact first."""
    await service.require_list(session, account_id, list_id)
    contacts, total = await repository.members_page(session, list_id, page.limit, page.offset)
    items = await service.contacts_out(session, contacts)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


# -- imports --------------------------------------------------------------------------------


async def _spool(upload: UploadFile) -> Path:
    """Copy the upload to our own temp file (the request's copy goes away with the request),
    checking on the way that it is UTF-8."""
    check = TextCheck()
    fd, name = tempfile.mkstemp(prefix="clarion-import-", suffix=".csv")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spooled:
            while block := await upload.read(1 << 20):
                check.feed(block)
                spooled.write(block)
        check.finish()
    except ImportFailed as exc:
        _remove(path)
        reason = str(exc)
        raise Unprocessable(reason[:1].upper() + reason[1:] + ".", field="file") from None
    except BaseException:
        _remove(path)
        raise
    return path


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@router.post("/lists/{list_id}/imports", status_code=202, response_model=ImportStarted)
async def start_import(
    list_id: PathId,
    principal: CurrentPrincipal,
    request: Request,
    file: Annotated[UploadFile, File(description="the CSV file (UTF-8, header row)")],
    default_country: Annotated[
        str,
        Form(
            alias="defaultCountry",
            max_length=2,
            description="ISO 3166 alpha-2 code used to read national numbers (empty: none)",
            json_schema_extra={"enum": ["", *REGIONS, *(r.lower() for r in REGIONS)]},
        ),
    ] = "",
) -> ImportStarted:
    """Import a CSV file into the list, in the background; follow it with GET /imports/{id}.

    The file needs a header row with a phone column (`phone`, `mobile`, `msisdn`, ... any
    case); `firstName`/`first_name` and `lastName`/`last_name` give the names and every other
    column becomes an attribute. The delimiter (`,` `;` tab `|`) is detected. The file must
    be UTF-8 (a byte order mark is fine): other encodings are refused (422, field `file`)
    rather than guessed. Contacts are upserted by phone; empty cells never erase a value.
    Columns `consent_sms`, `consent_whatsapp` and `consent_rcs` hold `granted` or `denied`
    (any other value makes the row invalid) and go to the contacts' history (source
    `import`).
    The import lives in this server process: a restart marks it `failed`."""
    try:
        # An HTML form sends an empty field for "no value".
        region = check_region(default_country or None)
    except ValueError as exc:
        raise Unprocessable(str(exc), field="defaultCountry") from None
    account_id = principal.account_id
    db: Database = request.app.state.db
    async with db.session(write=False) as session:
        await service.require_list(session, account_id, list_id)
    path = await _spool(file)
    try:
        async with db.transaction() as session:
            import_id = await repository.create_import(session, account_id, list_id, file.filename)
            # This route owns its transaction (the upload is spooled first), so it writes
            # its audit row itself.
            audit.describe(
                request,
                action="import.create",
                target=("import", import_id),
                detail={"listId": list_id, "filename": file.filename},
            )
            await audit.record_request(session, request)
    except BaseException:
        _remove(path)
        raise
    tasks.start_import(
        request.app,
        import_id=import_id,
        account_id=account_id,
        list_id=list_id,
        path=path,
        default_country=region,
        cause=Cause.of(principal, source="import"),
    )
    return ImportStarted(id=import_id, status="running")


@router.get("/imports/{import_id}", response_model=ImportOut)
async def get_import(
    import_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> ContactImport:
    """Progress of an import (counters move with every chunk of 5,000 rows).
    `rows = imported + updated + invalid`; `errors` holds the first 1,000 invalid rows,
    `row` counting the header as row 1; `GET /imports/{id}/errors` has them all."""
    row = await repository.import_of_account(session, account_id, import_id)
    if row is None:
        raise NotFound(f"No import {import_id}.")
    return row


ERRORS_CSV_PAGE = 5_000


async def _errors_csv(db: Database, import_id: int) -> AsyncIterator[str]:
    """Every rejected row, read in keyset pages with a short read transaction each."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)  # phones and reasons echo the uploaded file
    writer.writerow(["row", "phone", "reason"])
    yield buffer.getvalue()
    after = 0
    while True:
        async with db.session(write=False) as session:
            page = await repository.import_errors_after(session, import_id, after, ERRORS_CSV_PAGE)
        if not page:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([e.row, e.phone or "", e.reason] for e in page)
        after = page[-1].id
        yield buffer.getvalue()


@router.get(
    "/imports/{import_id}/errors",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "CSV with the columns `row`, `phone`, `reason`, in file order",
        }
    },
)
async def import_errors(
    import_id: PathId, account_id: CurrentAccountId, request: Request
) -> StreamingResponse:
    """Every row the import rejected, as CSV (`row` counts the header as row 1; the phone
    as written in the file, cut to 100 characters). Cells that a spreadsheet would run as
    a formula are prefixed with `'`. Available while the import runs too (rows so far)."""
    db: Database = request.app.state.db
    async with db.session(write=False) as session:
        if await repository.import_of_account(session, account_id, import_id) is None:
            raise NotFound(f"No import {import_id}.")
    return StreamingResponse(
        _errors_csv(db, import_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
