import asyncio
import os
import sys
from pathlib import Path

from tests.audience.conftest import FR, US, new_list
from tests.conftest import AccountClient, Api

CLARION = str(Path(sys.executable).with_name("clarion"))


async def run_cli(database_url: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "CLARION_DATABASE_URL": database_url, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        CLARION,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode()


class TestImportCommand:
    async def test_imports_into_the_list(
        self, api: Api, account: AccountClient, tmp_path: Path
    ) -> None:
        list_id = await new_list(account)
        csv = tmp_path / "people.csv"
        csv.write_text(f"phone;firstName\n06 12 34 56 78;Léa\n{US};Bob\nnope;X\n")
        code, out = await run_cli(
            str(api.db.writer.url.set(drivername=api.db.dialect).render_as_string(False)),
            "import",
            str(csv),
            "--list",
            str(list_id),
            "--default-country",
            "FR",
        )
        assert code == 0, out
        assert "done" in out and "rows/s" in out
        members = (await account.get(f"/lists/{list_id}/contacts")).json()
        assert sorted(m["phone"] for m in members["items"]) == sorted([FR, US])
        imports = out.split("import ", 1)[1].split(" ", 1)[0]
        status = (await account.get(f"/imports/{imports}")).json()
        assert (status["rows"], status["imported"], status["invalid"]) == (3, 2, 1)

    async def test_unknown_list_and_bad_country(self, api: Api, tmp_path: Path) -> None:
        csv = tmp_path / "people.csv"
        csv.write_text(f"phone\n{FR}\n")
        url = str(api.db.writer.url.set(drivername=api.db.dialect).render_as_string(False))
        code, out = await run_cli(url, "import", str(csv), "--list", "4242")
        assert code == 2 and "No list 4242" in out
        code, out = await run_cli(url, "import", str(csv), "--list", "1", "--default-country", "XX")
        assert code == 2 and "default-country" in out
