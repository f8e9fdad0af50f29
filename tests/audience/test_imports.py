import asyncio
import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from clarion.app import create_app
from clarion.audience import imports, tasks
from clarion.audience.history import Cause
from clarion.audience.imports import run_import
from clarion.audience.models import ContactImport
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from tests.audience.conftest import (
    FR,
    GB,
    US,
    import_csv,
    new_contact,
    new_list,
    upload,
    wait_import,
)
from tests.conftest import AccountClient, Api, AppFactory

IMPORT_KEYS = {
    "id",
    "listId",
    "status",
    "rows",
    "imported",
    "updated",
    "invalid",
    "errors",
    "failureReason",
    "createdAt",
    "finishedAt",
}


class TestImportCounts:
    async def test_upsert_counts_and_members(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        existing = await new_contact(account, GB, firstName="Kept", attributes={"x": "1"})
        csv = (
            "phone,firstName,lastName,plan,city\n"
            f"{FR},Marie,Curie,gold,Paris\n"
            f"{GB},,Smith,,London\n"
            "not-a-phone,Bad,Row,,\n"
            f"{US},Grace,Hopper,silver,\n"
        ).encode()
        result = await import_csv(account, list_id, csv)
        assert set(result) == IMPORT_KEYS
        assert result["status"] == "done", result
        assert (result["rows"], result["imported"], result["updated"], result["invalid"]) == (
            4,
            2,
            1,
            1,
        )
        assert result["errors"] == [
            {"row": 4, "phone": "not-a-phone", "reason": result["errors"][0]["reason"]}
        ]
        assert "characters" in result["errors"][0]["reason"]
        assert result["finishedAt"] is not None and result["failureReason"] is None
        members = (await account.get(f"/lists/{list_id}/contacts")).json()
        assert members["total"] == 3
        gb = (await account.get(f"/contacts/{existing['id']}")).json()
        assert gb["firstName"] == "Kept" and gb["lastName"] == "Smith"
        assert gb["attributes"] == {"x": "1", "city": "London"}
        fr = next(m for m in members["items"] if m["phone"] == FR)
        assert fr["attributes"] == {"plan": "gold", "city": "Paris"}
        assert fr["firstName"] == "Marie" and fr["country"] == "FR"

    async def test_same_file_twice_updates(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        csv = f"phone\n{FR}\n{US}\n".encode()
        first = await import_csv(account, list_id, csv)
        assert (first["imported"], first["updated"]) == (2, 0)
        again = await import_csv(account, list_id, csv)
        assert (again["rows"], again["imported"], again["updated"]) == (2, 0, 2)

    async def test_repeated_phone_later_row_wins(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        csv = (
            f"Phone;first_name;last_name;tier\n{FR};First;Row;a\n+33 6 12 34 56 78;Second;;b\n"
        ).encode()
        result = await import_csv(account, list_id, csv)
        assert (result["rows"], result["imported"], result["updated"]) == (2, 1, 1)
        contact = (await account.get("/contacts")).json()["items"][0]
        assert contact["firstName"] == "Second" and contact["lastName"] == "Row"
        assert contact["attributes"] == {"tier": "b"}

    async def test_repeat_across_chunks_counts_the_same(
        self, account: AccountClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
        list_id = await new_list(account)
        rows = [FR, US, GB, FR, "bad", US, GB]
        csv = ("mobile,name\n" + "".join(f"{p},n{i}\n" for i, p in enumerate(rows))).encode()
        result = await import_csv(account, list_id, csv)
        assert (result["rows"], result["imported"], result["updated"], result["invalid"]) == (
            7,
            3,
            3,
            1,
        )
        assert result["errors"][0]["row"] == 6
        contacts = (await account.get("/contacts")).json()["items"]
        assert {c["phone"]: c["attributes"]["name"] for c in contacts} == {
            FR: "n3",
            US: "n5",
            GB: "n6",
        }


class TestImportFormats:
    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (b"\xef\xbb\xbfphone,firstName\n+33612345678,L\xc3\xa9a\n", "Léa"),
            (b"phone;firstName\r\n+33612345678;Zo\xc3\xa9\r\n", "Zoé"),
            (b"msisdn\tFirst Name\n+33612345678\tTab\n", "Tab"),
            (b"MSISDN|first_name\n+33612345678|Pipe\n", "Pipe"),
            (
                b'"phone","firstName"\n"+33 6 12 34 56 78","Quoted, with comma"\n',
                "Quoted, with comma",
            ),
            (b"\xef\xbb\xbfTelephone;Prenom\r\n\r\n+33612345678;Bom\r\n;;\r\n", "Bom"),
        ],
    )
    async def test_delimiters_and_bom(
        self, account: AccountClient, content: bytes, expected: str
    ) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, content)
        assert result["status"] == "done", result
        assert (result["rows"], result["imported"], result["invalid"]) == (1, 1, 0)
        contact = (await account.get("/contacts")).json()["items"][0]
        assert contact["phone"] == FR and contact["firstName"] == expected

    async def test_national_numbers_with_default_country(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        csv = b"phone\n06 12 34 56 78\n+1 650 253 0000\n07911 123456\n"
        result = await import_csv(account, list_id, csv, default_country="fr")
        assert (result["imported"], result["invalid"]) == (2, 1)
        assert result["errors"][0]["row"] == 4
        without = await import_csv(account, list_id, b"phone\n0612345678\n")
        assert without["invalid"] == 1
        assert "defaultCountry" in without["errors"][0]["reason"]

    async def test_errors_capped_at_1000(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        lines = [f"bad{i}" for i in range(1_200)] + [FR]
        result = await import_csv(account, list_id, ("phone\n" + "\n".join(lines)).encode())
        assert (result["rows"], result["invalid"], result["imported"]) == (1_201, 1_200, 1)
        assert len(result["errors"]) == 1_000
        assert result["errors"][0]["row"] == 2 and result["errors"][-1]["row"] == 1_001

    async def test_every_rejected_row_is_downloadable_as_csv(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        lines = [f"bad{i}" for i in range(1_500)] + [FR, "=cmd|' /C calc'!A0", "x" * 500]
        result = await import_csv(account, list_id, ("phone\n" + "\n".join(lines)).encode())
        assert (result["invalid"], len(result["errors"])) == (1_502, 1_000)
        r = await account.get(f"/imports/{result['id']}/errors")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["row", "phone", "reason"]
        assert len(rows) == 1 + 1_502
        assert [int(row[0]) for row in rows[1:]] == [*range(2, 1_502), 1_503, 1_504]
        assert rows[1][1] == "bad0" and rows[1][2]
        assert rows[-2][1] == "'=cmd|' /C calc'!A0"  # neutralised for spreadsheets
        assert rows[-1][1] == "x" * 100  # a phone in an error is cut to 100 characters

    async def test_errors_of_another_account_are_404(
        self, api: Api, account: AccountClient
    ) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, b"phone\nbad\n")
        other = await api.new_account("other")
        r = await other.get(f"/imports/{result['id']}/errors")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await account.get("/imports/999999/errors")).status_code == 404

    async def test_a_cell_over_the_limit_fails_naming_its_row(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        content = f"phone,note\n{FR},a\n{US},{'y' * 1_000_001}\n{GB},c\n".encode()
        result = await import_csv(account, list_id, content)
        assert result["status"] == "failed"
        assert result["failureReason"] == (
            "row 3 has a cell longer than 1,000,000 characters (the limit); "
            "the rows before it were imported"
        )
        assert (result["rows"], result["imported"]) == (1, 1)
        phones = [c["phone"] for c in (await account.get("/contacts")).json()["items"]]
        assert phones == [FR]

    async def test_attribute_limits(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        header = "phone," + ",".join(f"a{i}" for i in range(101))
        result = await import_csv(account, list_id, f"{header}\n{FR}\n".encode())
        assert result["status"] == "failed"
        assert "101 attribute columns" in result["failureReason"]
        big = "z" * 70_000
        result = await import_csv(account, list_id, f"phone,note\n{FR},{big}\n{US},ok\n".encode())
        assert (result["status"], result["imported"], result["invalid"]) == ("done", 1, 1)
        assert "65,536 bytes" in result["errors"][0]["reason"]

    async def test_too_many_cells_is_an_invalid_row(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, f"phone\n{FR},extra\n{US},\n".encode())
        assert (result["invalid"], result["imported"]) == (1, 1)
        assert "cells" in result["errors"][0]["reason"]

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (b"name,email\nx,y\n", "no phone column"),
            (b"", "empty"),
            (b"\n\n", "empty"),
        ],
    )
    async def test_unusable_files_fail_with_a_reason(
        self, account: AccountClient, content: bytes, reason: str
    ) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, content)
        assert result["status"] == "failed"
        assert reason in result["failureReason"]
        assert result["rows"] == 0

    async def test_non_utf8_is_refused(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        r = await upload(account, list_id, b"phone,firstName\n+33612345678,L\xe9a\n")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "file"
        assert "UTF-8" in r.json()["detail"]
        assert (await account.get("/contacts")).json()["total"] == 0

    async def test_bad_requests(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        r = await account.post(f"/lists/{list_id}/imports", data={"defaultCountry": "FR"})
        assert r.status_code == 422
        r = await upload(account, list_id, b"phone\n", default_country="XX")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "defaultCountry"
        r = await account.post(f"/lists/{list_id}/imports", json={"file": "phone"})
        assert r.status_code == 422
        r = await upload(account, 999_999, b"phone\n")
        assert r.status_code == 404
        for bad in ("abc", "0", "-1", str(2**64)):
            assert (await account.get(f"/imports/{bad}")).status_code == 422
        assert (await account.get("/imports/424242")).status_code == 404

    async def test_upload_over_body_limit_accepted(self, make_api: AppFactory) -> None:
        api = await make_api(max_body_bytes=1_000)
        account = await api.new_account("big")
        list_id = await new_list(account)
        csv = "phone\n" + "".join(f"+336{i:08d}\n" for i in range(500))
        assert len(csv) > 1_000
        result = await import_csv(account, list_id, csv.encode())
        assert result["imported"] == 500
        r = await account.post(
            f"/lists/{list_id}/contacts", json={"contacts": [{"phone": "x" * 2000}]}
        )
        assert r.status_code == 413


class TestParsingInProcess:
    async def test_without_parse_workers(self, make_api: AppFactory) -> None:
        api = await make_api(import_workers=0)
        account = await api.new_account("inline")
        list_id = await new_list(account)
        csv = f"phone,plan\n{FR},a\nbad,b\n{US},c\n{FR},d\n".encode()
        result = await import_csv(account, list_id, csv)
        assert (result["rows"], result["imported"], result["updated"], result["invalid"]) == (
            4,
            2,
            1,
            1,
        )


class TestListDeletedDuringImport:
    async def test_fails_with_a_reason(
        self, api: Api, account: AccountClient, tmp_path: Any
    ) -> None:
        list_id = await new_list(account)
        async with api.db.transaction() as session:
            row = ContactImport(
                account_id=account.id,
                list_id=list_id,
                status="running",
                rows=0,
                imported=0,
                updated=0,
                invalid=0,
                errors=[],
            )
            session.add(row)
            await session.flush()
            import_id = row.id
        assert (await account.delete(f"/lists/{list_id}")).status_code == 204
        path = tmp_path / "c.csv"
        path.write_text(f"phone\n{FR}\n")
        await run_import(
            api.db,
            import_id=import_id,
            account_id=account.id,
            list_id=list_id,
            path=path,
            default_country=None,
            cause=Cause.system("import", "test"),
        )
        status = (await account.get(f"/imports/{import_id}")).json()
        assert status["status"] == "failed"
        assert status["failureReason"] == "the list was deleted during the import"
        assert (await account.get("/contacts")).json()["total"] == 0

    async def test_empty_default_country_field_is_no_country(self, account: AccountClient) -> None:
        list_id = await new_list(account)
        r = await account.post(
            f"/lists/{list_id}/imports",
            files={"file": ("a.csv", f"phone\n{FR}\n".encode(), "text/csv")},
            data={"defaultCountry": ""},
        )
        assert r.status_code == 202, r.text
        assert (await wait_import(account, r.json()["id"]))["imported"] == 1


class TestImportIsolation:
    async def test_other_account_import_is_404(self, api: Api, account: AccountClient) -> None:
        other = await api.new_account("other")
        list_id = await new_list(account)
        result = await import_csv(account, list_id, f"phone\n{FR}\n".encode())
        assert (await other.get(f"/imports/{result['id']}")).status_code == 404
        assert (await other.get("/contacts")).json()["total"] == 0


class TestImportLifecycle:
    async def test_restart_marks_running_import_failed(
        self, api: Api, account: AccountClient, make_api: AppFactory
    ) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, f"phone\n{FR}\n".encode())
        # As a process that died mid-import leaves it: running, heartbeat a while ago.
        async with api.db.transaction() as session:
            await session.execute(
                update(ContactImport)
                .where(ContactImport.id == result["id"])
                .values(
                    status="running",
                    finished_at=None,
                    heartbeat_at=utcnow() - timedelta(seconds=tasks.STALE_AFTER + 5),
                )
            )
        await make_api()  # a new process starts
        after = (await account.get(f"/imports/{result['id']}")).json()
        assert after["status"] == "failed"
        assert after["failureReason"] == "interrupted by a restart"
        assert after["rows"] == 1

    async def test_a_live_import_of_another_process_is_left_alone(
        self, api: Api, account: AccountClient, make_api: AppFactory
    ) -> None:
        list_id = await new_list(account)
        result = await import_csv(account, list_id, f"phone\n{FR}\n".encode())
        # Running with a fresh heartbeat: another process (a cluster peer, `clarion import`)
        # is working on it.
        async with api.db.transaction() as session:
            await session.execute(
                update(ContactImport)
                .where(ContactImport.id == result["id"])
                .values(status="running", finished_at=None, heartbeat_at=utcnow())
            )
        await make_api()
        assert (await account.get(f"/imports/{result['id']}")).json()["status"] == "running"
        # Its process dies: the heartbeat ages and the sweep fails it.
        async with api.db.transaction() as session:
            await session.execute(
                update(ContactImport)
                .where(ContactImport.id == result["id"])
                .values(heartbeat_at=utcnow() - timedelta(seconds=tasks.STALE_AFTER + 1))
            )
        assert await tasks.fail_abandoned(api.db) == 1
        after = (await account.get(f"/imports/{result['id']}")).json()
        assert (after["status"], after["failureReason"]) == ("failed", "interrupted by a restart")

    async def test_shutdown_cancels_and_fails_running_imports(
        self, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gate = asyncio.Event()
        real = imports._write_chunk

        async def stuck_write(*args: Any, **kwargs: Any) -> bool:
            await gate.wait()  # never set: the import hangs mid-file
            return await real(*args, **kwargs)

        monkeypatch.setattr(imports, "_write_chunk", stuck_write)
        async with app_until_shutdown(settings, db) as (app, account):
            list_id = await new_list(account)
            r = await upload(account, list_id, f"phone\n{FR}\n".encode())
            import_id = r.json()["id"]
            await asyncio.sleep(0.1)
            running = (await account.get(f"/imports/{import_id}")).json()
            assert running["status"] == "running"
            assert import_id in app.state.import_tasks
        assert app.state.import_tasks == {}
        row = await stored_import(db, import_id)
        assert (row.status, row.failure_reason) == ("failed", "interrupted by a shutdown")

    async def test_shutdown_lets_the_chunk_being_written_finish(
        self, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A chunk cut by cancellation could lose its connection with the transaction open:
        # the import is told to stop, finishes the chunk it is writing, then ends failed.
        writing = asyncio.Event()
        real = imports._write_chunk

        async def slow_write(*args: Any, **kwargs: Any) -> bool:
            writing.set()
            await asyncio.sleep(0.5)
            return await real(*args, **kwargs)

        monkeypatch.setattr(imports, "_write_chunk", slow_write)
        monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
        in_process = settings.model_copy(update={"import_workers": 0})
        async with app_until_shutdown(in_process, db) as (_app, account):
            list_id = await new_list(account)
            body = f"phone\n{FR}\n+33612345679\n+33612345680\n".encode()
            import_id = (await upload(account, list_id, body)).json()["id"]
            await asyncio.wait_for(writing.wait(), 10)
        row = await stored_import(db, import_id)
        assert (row.status, row.failure_reason) == ("failed", "interrupted by a shutdown")
        assert row.imported == 1  # the first chunk was written, the next ones never started


@asynccontextmanager
async def app_until_shutdown(
    settings: Settings, db: Database
) -> AsyncIterator[tuple[FastAPI, AccountClient]]:
    """The app with its lifespan, and an account on it; the app shuts down when the block
    ends."""
    app = create_app(settings, db=db)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://clarion.test") as c:
            yield app, await Api(c, db).new_account("x")


async def stored_import(db: Database, import_id: int) -> ContactImport:
    async with db.session(write=False) as session:
        row = await session.get(ContactImport, import_id)
    assert row is not None
    return row


class TestNulBytes:
    @pytest.mark.parametrize(
        "content",
        [
            f"phone,firstName\n{FR},Ann\n".encode("utf-16-le"),  # its ASCII passes as UTF-8
            f"phone,firstName\n{FR},A\x00nn\n".encode(),
        ],
    )
    async def test_a_file_with_nul_bytes_is_refused(
        self, account: AccountClient, content: bytes
    ) -> None:
        list_id = await new_list(account)
        r = await upload(account, list_id, content)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "file"
        assert "NUL byte" in r.json()["detail"] and "UTF-8" in r.json()["detail"]
        assert (await account.get("/contacts")).json()["total"] == 0
