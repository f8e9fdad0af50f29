"""The CSV import core, shared by `POST /lists/{id}/imports` and `clarion import`.

The file is streamed: records are read in chunks of CHUNK_ROWS, each chunk is parsed in
Python (phone normalization is the only per-row work that has to be Python) and written in
one transaction with set-based SQL (`repository.upsert_contacts`), which also stores the
progress counters. Memory holds one chunk, whatever the file size.

File rules:
- Encoding: UTF-8, with or without a byte order mark. A file that is not valid UTF-8 is
  refused before anything is imported (status `failed`, the reason names the byte offset):
  guessing a legacy encoding silently corrupts names, so we ask for a UTF-8 export instead.
- Delimiter: the one of `,` `;` tab `|` that occurs most in the header line.
- Header row required. The phone column is found by name, case- and punctuation-insensitive
  (`phone`, `Phone Number`, `mobile`, `msisdn`, `tel`, ...); `firstName` / `first_name` /
  `First Name` and `lastName` / `last_name` / `surname` give the names; every other column
  becomes an attribute (named as in the header), except `consent_sms`, `consent_whatsapp`
  and `consent_rcs`, which hold the contact's consent (`granted` or `denied`, any case; any
  other value makes the row invalid). Empty cells are no value: they never erase
  what a contact already has; attributes are merged into the existing ones.
- `row` in errors is the record's number in the file counting the header as row 1 (as a
  spreadsheet shows it). Blank lines are skipped and not counted.
- A phone repeated in the file: the later row wins and counts as `updated`.
- Every rejected row is kept (`GET /imports/{id}/errors`), the first MAX_ERRORS also on the
  import itself; the phone shown in an error is cut to MAX_ERROR_PHONE characters.
- A cell holds at most MAX_CELL characters (Python's csv module stops there): a longer one
  fails the import naming its row, keeping the rows before it. A contact holds at most
  MAX_ATTRIBUTES attributes (a file with more attribute columns is refused) and
  MAX_ATTRIBUTES_BYTES of them as JSON (a longer row is invalid).
"""

import asyncio
import codecs
import csv
import io
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError

from clarion.audience import hook_events, repository
from clarion.audience.consent import Wanted, set_consents
from clarion.audience.history import Cause
from clarion.audience.phones import InvalidPhone, normalize_fast
from clarion.audience.repository import UpsertRow, merge_rows
from clarion.audience.schemas import CONSENT_STATUSES, MAX_ATTRIBUTES, attributes_problem
from clarion.db.base import utcnow
from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database

log = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
MAX_ERRORS = 1_000  # the sample on the import row; the error table keeps them all
MAX_ERROR_PHONE = 100
MAX_NAME = 200
MAX_CELL = 1_000_000
DELIMITERS = (",", ";", "\t", "|")

_PHONE_NAMES = {
    "phone",
    "phonenumber",
    "phoneno",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "msisdn",
    "cell",
    "cellphone",
    "tel",
    "telephone",
    "number",
    "e164",
}
_FIRST_NAMES = {"firstname", "first", "givenname", "forename", "prenom"}
_LAST_NAMES = {"lastname", "last", "surname", "familyname", "nom"}
_CONSENT_COLUMNS = {"consentsms": "sms", "consentwhatsapp": "whatsapp", "consentrcs": "rcs"}
_KEY_NOISE = re.compile(r"[\s_\-.]+")

csv.field_size_limit(MAX_CELL)


SHUTDOWN_REASON = "interrupted by a shutdown"


class ImportFailed(Exception):
    """The file cannot be imported at all; the message is the failure reason shown."""


class Columns(NamedTuple):
    phone: int
    first_name: int | None
    last_name: int | None
    attributes: tuple[tuple[int, str], ...]
    width: int
    consents: tuple[tuple[int, str, str], ...] = ()  # (index, channel, header as written)


@dataclass
class Progress:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    invalid: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: int = 0
    bytes_total: int = 0


class ParsedChunk(NamedTuple):
    rows: list[UpsertRow]  # unique phones, the later row's values
    valid: int  # valid records, repeated phones included
    invalid: int
    errors: list[tuple[int, str | None, str]]  # (row, phone, reason), at most room_for_errors
    consents: dict[str, dict[str, str]]  # phone -> channel -> granted|denied (the later row's)


def _key(name: str) -> str:
    return _KEY_NOISE.sub("", name.strip().lower())


def map_columns(header: list[str]) -> Columns:
    phone = first = last = None
    attributes: list[tuple[int, str]] = []
    consents: list[tuple[int, str, str]] = []
    for index, name in enumerate(header):
        key = _key(name)
        if key in _CONSENT_COLUMNS:
            consents.append((index, _CONSENT_COLUMNS[key], name.strip()))
        elif phone is None and key in _PHONE_NAMES:
            phone = index
        elif first is None and key in _FIRST_NAMES:
            first = index
        elif last is None and key in _LAST_NAMES:
            last = index
        elif name.strip():
            attributes.append((index, name.strip()))
    if phone is None:
        raise ImportFailed(
            "no phone column: the header row needs a column named phone "
            "(or mobile, msisdn, phone number, tel)"
        )
    if len(attributes) > MAX_ATTRIBUTES:
        raise ImportFailed(
            f"{len(attributes)} attribute columns: a contact holds at most {MAX_ATTRIBUTES} "
            "attributes (columns other than the phone and the names)"
        )
    return Columns(phone, first, last, tuple(attributes), len(header), tuple(consents))


class TextCheck:
    """Checks, block by block, that a file is UTF-8 text without NUL bytes, before anything
    is imported (a fast pass in C). A NUL byte means a binary or UTF-16 file (whose ASCII
    would otherwise pass as UTF-8); PostgreSQL text could not hold it either."""

    AGAIN = "export it as UTF-8 CSV and import it again"

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._offset = 0

    def feed(self, block: bytes) -> None:
        try:
            self._decoder.decode(block)
        except UnicodeDecodeError as exc:
            raise ImportFailed(
                "the file is not UTF-8 text (undecodable byte at offset "
                f"{self._offset + exc.start}); {self.AGAIN}"
            ) from None
        nul = block.find(b"\x00")
        if nul >= 0:
            raise ImportFailed(
                f"the file is not UTF-8 text (a NUL byte at offset {self._offset + nul}: "
                f"UTF-16 or binary?); {self.AGAIN}"
            )
        self._offset += len(block)

    def finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFailed(
                f"the file is not UTF-8 text (it ends inside a character); {self.AGAIN}"
            ) from None


def check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 text before importing anything."""
    check = TextCheck()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            check.feed(block)
    check.finish()


def detect_delimiter(header_line: str) -> str:
    counts = [(header_line.count(d), -i, d) for i, d in enumerate(DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] > 0 else ","


def parse_chunk(
    records: list[list[str]],
    first_row: int,
    columns: Columns,
    default_country: str | None,
    room_for_errors: int,
) -> ParsedChunk:
    """Normalize one chunk of records (a pure function: it could run in another process)."""
    rows: dict[str, UpsertRow] = {}
    consents: dict[str, dict[str, str]] = {}
    errors: list[tuple[int, str | None, str]] = []
    invalid = blank = 0
    phone_at, first_at, last_at = columns.phone, columns.first_name, columns.last_name
    attribute_cols = columns.attributes
    width = columns.width
    for offset, record in enumerate(records):
        reason: str | None = None
        raw = record[phone_at] if phone_at < len(record) else ""
        if not raw and not any(record):
            blank += 1  # a blank line (or only delimiters): not a row
            continue
        if len(record) > width and any(cell.strip() for cell in record[width:]):
            reason = f"{len(record)} cells but the header has {width}"
        else:
            try:
                phone, country = normalize_fast(raw, default_country)
            except InvalidPhone as exc:
                reason = exc.reason
        if reason is None:
            first = (
                record[first_at].strip() or None
                if first_at is not None and first_at < len(record)
                else None
            )
            last = (
                record[last_at].strip() or None
                if last_at is not None and last_at < len(record)
                else None
            )
            if (first and len(first) > MAX_NAME) or (last and len(last) > MAX_NAME):
                reason = f"name longer than {MAX_NAME} characters"
        attributes = None
        if reason is None and attribute_cols:
            attributes = {
                name: record[i] for i, name in attribute_cols if i < len(record) and record[i] != ""
            } or None
            reason = attributes_problem(attributes) if attributes else None
        given: dict[str, str] = {}
        if reason is None and columns.consents:
            given, reason = _consents(record, columns.consents)
        if reason is not None:
            invalid += 1
            if len(errors) < room_for_errors:
                shown = raw[:MAX_ERROR_PHONE] if raw else None
                errors.append((first_row + offset, shown, reason))
            continue
        row = UpsertRow(phone, country, first, last, attributes)
        earlier = rows.get(phone)
        rows[phone] = row if earlier is None else merge_rows(earlier, row)
        if given:
            consents[phone] = {**consents.get(phone, {}), **given}
    return ParsedChunk(
        list(rows.values()), len(records) - invalid - blank, invalid, errors, consents
    )


def _consents(
    record: list[str], columns: tuple[tuple[int, str, str], ...]
) -> tuple[dict[str, str], str | None]:
    """The row's consent per channel (empty cells say nothing), or why it is invalid."""
    given: dict[str, str] = {}
    for index, channel, name in columns:
        cell = record[index].strip().lower() if index < len(record) else ""
        if not cell:
            continue
        if cell not in CONSENT_STATUSES:
            shown = record[index].strip()[:40]
            return {}, f"{name}: {shown!r} is not granted or denied"
        given[channel] = cell
    return given, None


class CsvSource:
    """Records of a CSV file in chunks, with the bytes read so far (for progress bars)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw = path.open("rb")
        self._file = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")

    def close(self) -> None:
        self._file.close()

    @property
    def bytes_read(self) -> int:
        return min(self._raw.tell(), self.size)

    def open(self) -> tuple[Columns, Iterator[list[str]]]:
        header_line = self._file.readline()
        while header_line and not header_line.strip():
            header_line = self._file.readline()
        if not header_line:
            raise ImportFailed("the file is empty (a header row with a phone column is needed)")
        delimiter = detect_delimiter(header_line)
        reader = csv.reader(itertools.chain([header_line], self._file), delimiter=delimiter)
        header = next(reader)
        return map_columns(header), reader


ProgressCallback = Callable[[Progress], None]


async def run_import(
    db: Database,
    *,
    import_id: int,
    account_id: int,
    list_id: int | None,
    path: Path,
    default_country: str | None,
    cause: Cause,
    on_progress: ProgressCallback | None = None,
    chunk_rows: int | None = None,
    executor: Executor | None = None,
    utf8_checked: bool = False,
    stopping: asyncio.Event | None = None,
) -> Progress:
    """Import the file into the account (and the list). Marks the import done or failed;
    raises nothing but cancellation. `utf8_checked`: the caller already verified the
    encoding (the upload route does while spooling), so the extra pass is skipped.

    With an `executor` (a process pool), chunk N+1 is parsed in another process while chunk
    N is written: phone parsing and the database then use both cores, and the event loop
    stays free for other requests. Without one, chunks are parsed here, one after the other.
    Consent columns are written to the contacts' history as caused by `cause`. Once
    `stopping` is set, the import ends after the chunk being written, failed as interrupted
    by a shutdown (the rows written so far stay).
    """
    progress = Progress(bytes_total=os.stat(path).st_size)
    try:
        await _import(
            db,
            import_id,
            account_id,
            list_id,
            path,
            default_country,
            cause,
            progress,
            on_progress,
            chunk_rows or CHUNK_ROWS,
            executor,
            utf8_checked,
            stopping,
        )
    except ImportFailed as exc:
        await _finish(db, import_id, "failed", str(exc))
        return progress
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or a database outage: say so, keep the process up
        await _finish(db, import_id, "failed", f"internal error: {type(exc).__name__}")
        raise
    await _keep_analyzed(db, progress, list_id)
    await _finish(db, import_id, "done", None)
    return progress


async def _keep_analyzed(db: Database, progress: Progress, list_id: int | None) -> None:
    """Statistics of the tables the import changed, fresh by the time it reads `done`: a
    campaign confirmed right after is then planned on them (see db/plans.py)."""
    changed = progress.imported + progress.updated
    written = {"contact": changed, **({"list_member": changed} if list_id is not None else {})}
    try:
        await analyze_if_changed(db, written)
    except Exception:  # statistics are an optimization: the import itself succeeded
        log.exception("ANALYZE after an import failed")


async def _finish(db: Database, import_id: int, status: str, reason: str | None) -> None:
    async with db.transaction() as session:
        finished = await repository.finish_import(session, import_id, status, reason)
        if finished is not None:
            await hook_events.import_completed(session, finished)


async def _import(
    db: Database,
    import_id: int,
    account_id: int,
    list_id: int | None,
    path: Path,
    default_country: str | None,
    cause: Cause,
    progress: Progress,
    on_progress: ProgressCallback | None,
    chunk_rows: int,
    executor: Executor | None,
    utf8_checked: bool,
    stopping: asyncio.Event | None,
) -> None:
    if not utf8_checked:
        await asyncio.to_thread(check_utf8, path)
    loop = asyncio.get_running_loop()
    source = CsvSource(path)
    try:
        columns, reader = source.open()
        next_row = 2  # the header is row 1

        unreadable: ImportFailed | None = None

        def parse_next() -> "asyncio.Future[ParsedChunk] | None":
            nonlocal next_row, unreadable
            records = []
            try:
                for record in itertools.islice(reader, chunk_rows):
                    records.append(record)
            except csv.Error as exc:
                # The rows read so far are imported; the import then fails naming the row.
                row = next_row + len(records)
                unreadable = ImportFailed(
                    f"row {row} has a cell longer than {MAX_CELL:,} characters (the limit); "
                    "the rows before it were imported"
                    if "field larger than field limit" in str(exc)
                    else f"row {row} cannot be read as CSV ({exc}); "
                    "the rows before it were imported"
                )
            if not records:
                return None  # the end, or an unreadable row raised once the rest is written
            first_row, next_row = next_row, next_row + len(records)
            args = (records, first_row, columns, default_country, len(records))
            if executor is None:
                done: asyncio.Future[ParsedChunk] = loop.create_future()
                done.set_result(parse_chunk(*args))
                return done
            return loop.run_in_executor(executor, parse_chunk, *args)

        pending = parse_next()
        while pending is not None:
            parsed = await pending
            # parsed elsewhere while this chunk is written
            pending = parse_next() if unreadable is None else None
            still_running = await _write_chunk(
                db, import_id, account_id, list_id, parsed, progress, cause
            )
            progress.bytes_read = source.bytes_read
            if on_progress is not None:
                on_progress(progress)
            if not still_running or (stopping is not None and stopping.is_set()):
                if pending is not None:
                    pending.cancel()
                if still_running:  # the process is shutting down
                    raise ImportFailed(SHUTDOWN_REASON)
                return
        if unreadable is not None:
            raise unreadable
    finally:
        source.close()


async def _write_chunk(
    db: Database,
    import_id: int,
    account_id: int,
    list_id: int | None,
    parsed: ParsedChunk,
    progress: Progress,
    cause: Cause,
) -> bool:
    try:
        return await _write_chunk_once(db, import_id, account_id, list_id, parsed, progress, cause)
    except IntegrityError:
        if list_id is not None and not await _list_exists(db, list_id):
            raise ImportFailed("the list was deleted during the import") from None
        raise


async def _list_exists(db: Database, list_id: int) -> bool:
    async with db.session(write=False) as session:
        return await repository.list_by_id(session, list_id) is not None


async def _write_chunk_once(
    db: Database,
    import_id: int,
    account_id: int,
    list_id: int | None,
    parsed: ParsedChunk,
    progress: Progress,
    cause: Cause,
) -> bool:
    async with db.transaction() as session:
        result = await repository.upsert_contacts(session, account_id, parsed.rows, list_id)
        if parsed.consents:
            ids = await repository.contact_ids_by_phone(session, account_id, list(parsed.consents))
            wanted = [
                Wanted(ids[phone], channel, status)
                for phone, given in parsed.consents.items()
                for channel, status in sorted(given.items())
            ]
            await set_consents(session, wanted, cause, utcnow())
        if list_id is not None and result.added:
            await repository.touch_lists(session, [list_id])
        progress.rows += parsed.valid + parsed.invalid
        progress.imported += result.inserted
        progress.updated += parsed.valid - result.inserted
        progress.invalid += parsed.invalid
        await repository.add_import_errors(session, import_id, parsed.errors)
        new_errors = None
        room = MAX_ERRORS - len(progress.errors)
        if parsed.errors and room > 0:
            progress.errors.extend(
                {"row": row, "phone": phone, "reason": reason}
                for row, phone, reason in parsed.errors[:room]
            )
            new_errors = progress.errors
        return await repository.record_import_progress(
            session,
            import_id,
            rows=progress.rows,
            imported=progress.imported,
            updated=progress.updated,
            invalid=progress.invalid,
            errors=new_errors,
        )
