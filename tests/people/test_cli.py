"""`clarion users create`: the password from standard input, one clear sentence on error."""

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import AccountClient, Api
from tests.people.conftest import Browser

CLARION = str(Path(sys.executable).with_name("clarion"))


async def users_create(api: Api, stdin: str, *args: str) -> tuple[int, str, str]:
    url = api.db.writer.url.set(drivername=api.db.dialect).render_as_string(False)
    env = {**os.environ, "CLARION_DATABASE_URL": url, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        CLARION,
        "users",
        "create",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class TestUsersCreate:
    async def test_creates_an_owner_who_can_sign_in(
        self, api: Api, account: AccountClient, browsers: object
    ) -> None:
        code, out, err = await users_create(
            api, "a long passphrase\n", "--account", str(account.id), "Boss@Example.com"
        )
        assert code == 0, err
        assert "owner" in out
        browser: Browser = browsers()  # type: ignore[operator]
        r = await browser.login("boss@example.com", "a long passphrase")
        assert r.status_code == 200
        assert r.json()["user"]["role"] == "owner"
        trail = (await account.get("/account/audit")).json()["items"]
        assert trail[1]["action"] == "user.create" and trail[1]["actor"]["type"] == "system"

    async def test_errors_are_one_sentence_and_a_failure_code(
        self, api: Api, account: AccountClient
    ) -> None:
        acct = str(account.id)
        cases = [
            ("short\n", ["--account", acct, "a@example.com"], "at least 10 characters"),
            ("", ["--account", acct, "a@example.com"], "at least 10 characters"),
            ("long enough pw\n", ["--account", "999", "a@example.com"], "Account 999 not found"),
            ("long enough pw\n", ["--account", acct, "not-an-email"], "email address"),
            ("long enough pw\n", ["--account", acct, "--role", "boss", "b@example.com"], "role"),
        ]
        for stdin, args, expected in cases:
            code, out, err = await users_create(api, stdin, *args)
            assert code != 0, (args, out)
            assert expected in err, (args, err)
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        code, _, _ = await users_create(api, "long enough pw\n", "--account", acct, "c@example.com")
        assert code == 0
        code, _, err = await users_create(
            api, "long enough pw\n", "--account", acct, "C@example.com"
        )
        assert code == 1 and "already exists" in err
