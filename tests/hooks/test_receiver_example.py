"""The receiver example of docs/integration.md ("Verifying a request"), run as written: the
code block is read from the file, so the documentation cannot drift from what works. It is
served on a loopback socket, registered as a hook, and sent a real delivery by the
deliverer; then that delivery's request is sent again, tampered with."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.hooks import outbox
from tests.conftest import AccountClient, Api
from tests.hooks.conftest import deliver_all

DOC = Path(__file__).resolve().parents[2] / "docs" / "integration.md"
SECTION = "### Verifying a request"


def documented_receiver() -> str:
    """The one Python block of the section."""
    section = DOC.read_text().split(SECTION, 1)[1].split("\n#", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"{SECTION} should hold one python block, not {len(blocks)}"
    return str(blocks[0])


def run_example(monkeypatch: pytest.MonkeyPatch, secret: str) -> web.Application:
    """Execute the block with the hook's secret in its environment variable; its closing
    `web.run_app(...)` hands over the application instead of serving it forever."""
    served: list[web.Application] = []
    monkeypatch.setenv("CLARION_HOOK_SECRET", secret)
    monkeypatch.setattr(web, "run_app", lambda app, *a, **kw: served.append(app))
    exec(compile(documented_receiver(), str(DOC), "exec"), {"__name__": "receiver_example"})
    [app] = served
    assert isinstance(app, web.Application), app  # what run_app needs
    return app


async def test_the_documented_receiver_takes_a_genuine_delivery_and_refuses_a_tampered_one(
    hook_api: Api,
    acme: AccountClient,
    db: Database,
    make_deliverer: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The hook needs the receiver's URL and the receiver the hook's secret: the port is
    # taken first, the receiver served on it once the hook is registered.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/clarion"
    r = await acme.post("/hooks", json={"url": url, "events": ["message.delivered"]})
    assert r.status_code == 201, r.text
    hook = r.json()

    app = run_example(monkeypatch, hook["secret"])
    requests: list[tuple[dict[str, str], bytes]] = []

    @web.middleware
    async def keep(request: web.Request, handler: Any) -> web.StreamResponse:
        requests.append((dict(request.headers), await request.read()))  # read() is cached
        return await handler(request)

    app.middlewares.append(keep)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        async with db.transaction() as s:
            data = {"messageId": 77, "campaignId": 5, "status": "delivered"}
            await outbox.record_event(s, acme.id, "message.delivered", data, utcnow())
        await deliver_all(await make_deliverer())

        # genuine: accepted (204) and its event handled
        [delivery] = (await acme.get(f"/hooks/{hook['id']}/deliveries")).json()["items"]
        assert (delivery["status"], delivery["lastStatusCode"]) == ("succeeded", 204)
        [printed] = capsys.readouterr().out.splitlines()
        assert printed.split(" ", 2)[1] == "message.delivered"
        assert "'messageId': 77" in printed

        [(headers, body)] = requests
        signed = {k: v for k, v in headers.items() if k.lower().startswith("webhook-")}
        assert set(signed) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        ts = int(signed["webhook-timestamp"])
        tampered = {
            "body": (signed, body.replace(b'"message.delivered"', b'"message.failed"')),
            "id": ({**signed, "webhook-id": signed["webhook-id"] + "0"}, body),
            "timestamp": ({**signed, "webhook-timestamp": str(ts + 1)}, body),
            "signature": ({**signed, "webhook-signature": "v1," + "A" * 44}, body),
            "malformed signature": ({**signed, "webhook-signature": "v1"}, body),
            "unsigned": ({}, body),
        }
        assert tampered["body"][1] != body
        async with httpx.AsyncClient() as client:
            for what, (sent_headers, sent_body) in tampered.items():
                r = await client.post(url, headers=sent_headers, content=sent_body)
                assert r.status_code == 401, what
            # the same request untouched is still taken (a redelivery): what the 401s
            # refused was the tampering
            r = await client.post(url, headers=signed, content=body)
            assert r.status_code == 204
        assert len(capsys.readouterr().out.splitlines()) == 1
    finally:
        await runner.cleanup()
