"""HTTP routes of contacts, lists and CSV imports."""

import contextlib
import logging
import os
import tempfile
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
    Response,
    UploadFile,
)

from clarion.audience import hotpath, repository, service, tasks
from clarion.audience.imports import ImportFailed, TextCheck
from clarion.audience.models import ContactImport, ContactList
from clarion.audience.phones import check_region, digits_only
from clarion.audience.schemas import (
    ContactCreate,
    ContactOut,
    ContactUpdate,
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
from clarion.auth import CurrentAccountId
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
    body: ContactCreate, account_id: CurrentAccountId, session: SessionDep
) -> ContactOut:
    """Create a contact. The phone is stored in E.164; a national number needs
    `defaultCountry`. An invalid number is 422 (field `phone`); a phone the account already
    has is 409 with the existing contact's `id` in the problem document."""
    contact = await service.create_contact(session, account_id, body)
    return service.contact_out(contact, [])


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
    contact_id: PathId, account_id: CurrentAccountId, request: Request
) -> Response:
    # The hot path (see audience/hotpath.py): one statement, JSON written directly in the
    # response model's shape (tests compare it with what POST /contacts answers).
    body = await hotpath.contact_json(request.app.state.db, account_id, contact_id)
    if body is None:
        raise NotFound(f"No contact {contact_id}.")
    return Response(body, media_type="application/json")


@router.put("/contacts/{contact_id}", response_model=ContactOut)
async def update_contact(
    contact_id: PathId, body: ContactUpdate, account_id: CurrentAccountId, session: SessionDep
) -> ContactOut:
    """Partial update: only the fields sent change. `attributes` replaces the object;
    `optOuts` sets the exact list of opted-out channels (changes are recorded with source
    "api"). A phone another contact has is 409 with that contact's `id`."""
    contact, opted = await service.update_contact(session, account_id, contact_id, body)
    return service.contact_out(contact, opted)


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
    row = await service.require_list(session, account_id, list_id)
    await session.delete(row)
    await session.flush()


@router.post("/lists/{list_id}/contacts", response_model=MembersAdded)
async def add_members(
    list_id: PathId,
    body: MembersAdd,
    account_id: CurrentAccountId,
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
    confirmed next is planned on them."""
    added = await service.add_members(session, account_id, list_id, body)
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
    account_id: CurrentAccountId,
    request: Request,
    file: Annotated[UploadFile, File(description="the CSV file (UTF-8, header row)")],
    default_country: Annotated[
        str | None,
        Form(
            alias="defaultCountry",
            max_length=2,
            description="ISO 3166 alpha-2 code used to read national numbers",
        ),
    ] = None,
) -> ImportStarted:
    """Import a CSV file into the list, in the background; follow it with GET /imports/{id}.

    The file needs a header row with a phone column (`phone`, `mobile`, `msisdn`, ... any
    case); `firstName`/`first_name` and `lastName`/`last_name` give the names and every other
    column becomes an attribute. The delimiter (`,` `;` tab `|`) is detected. The file must
    be UTF-8 (a byte order mark is fine): other encodings are refused (422, field `file`)
    rather than guessed. Contacts are upserted by phone; empty cells never erase a value.
    The import lives in this server process: a restart marks it `failed`."""
    try:
        # An HTML form sends an empty field for "no value".
        region = check_region(default_country or None)
    except ValueError as exc:
        raise Unprocessable(str(exc), field="defaultCountry") from None
    db: Database = request.app.state.db
    async with db.session(write=False) as session:
        await service.require_list(session, account_id, list_id)
    path = await _spool(file)
    try:
        async with db.transaction() as session:
            import_id = await repository.create_import(session, account_id, list_id, file.filename)
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
    )
    return ImportStarted(id=import_id, status="running")


@router.get("/imports/{import_id}", response_model=ImportOut)
async def get_import(
    import_id: PathId, account_id: CurrentAccountId, session: ReadSessionDep
) -> ContactImport:
    """Progress of an import (counters move with every chunk of 5,000 rows).
    `rows = imported + updated + invalid`; `errors` holds the first 1,000 invalid rows,
    `row` counting the header as row 1."""
    row = await repository.import_of_account(session, account_id, import_id)
    if row is None:
        raise NotFound(f"No import {import_id}.")
    return row
