"""JSON log lines, request ids (echoed, generated, invalid ones replaced), and the ids the
lines carry: request, account, campaign."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clarion import logs
from clarion.sending import scheduler
from clarion.sending.dispatcher import Dispatcher
from tests.sending.conftest import FakeProvider, drain, seed_campaign, seed_contacts, set_rates

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """What is logged meanwhile, through a handler set up as `logs.configure("json")` sets
    its own; calling it parses the lines so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class TestRequestId:
    async def test_a_valid_one_is_echoed(self, api, account):
        for rid in ("abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "a" * 128, "t.1:2_3"):
            r = await account.get("/account", headers={"X-Request-ID": rid})
            assert r.status_code == 200
            assert r.headers["x-request-id"] == rid

    async def test_one_is_made_when_absent(self, api, account):
        first = (await account.get("/account")).headers["x-request-id"]
        second = (await account.get("/account")).headers["x-request-id"]
        assert first != second
        assert logs.REQUEST_ID.fullmatch(first) and len(first) == 32

    async def test_an_invalid_one_is_replaced(self, api, account):
        for bad in ("a" * 129, "has space", "<script>", "-leading", "a\tb", ""):
            r = await account.get("/account", headers={"X-Request-ID": bad})
            got = r.headers["x-request-id"]
            assert got != bad and logs.REQUEST_ID.fullmatch(got), bad

    async def test_errors_carry_it_too(self, api):
        r = await api.client.get("/campaigns", headers={"X-Request-ID": "req-401"})
        assert r.status_code == 401
        assert r.headers["x-request-id"] == "req-401"
        r = await api.client.get("/campaigns/abc", headers={"X-Request-ID": "req-4xx"})
        assert r.headers["x-request-id"] == "req-4xx"


class TestJsonLines:
    async def test_access_lines_carry_request_and_account(self, make_api, json_lines):
        api = await make_api(log_format="json")
        account = await api.new_account("acme", credits=1)
        r = await account.get("/campaigns", headers={"X-Request-ID": "trace-42"})
        assert r.status_code == 200
        r = await api.client.get("/campaigns", headers={"X-Request-ID": "anon-1"})
        assert r.status_code == 401
        parsed = json_lines()
        access = next(x for x in parsed if x.get("request_id") == "trace-42")
        assert access["logger"] == "clarion.access"
        assert access["account_id"] == account.id
        assert (access["status"], access["path"], access["method"]) == (200, "/campaigns", "GET")
        assert access["level"] == "info" and access["time"].endswith("+00:00")
        anonymous = next(x for x in parsed if x.get("request_id") == "anon-1")
        assert "account_id" not in anonymous and anonymous["status"] == 401

    async def test_text_format_leaves_access_lines_to_the_server(self, make_api, json_lines):
        api = await make_api()
        await api.client.get("/healthz", headers={"X-Request-ID": "quiet"})
        assert not [x for x in json_lines() if x.get("request_id") == "quiet"]

    async def test_engine_lines_carry_the_campaign(self, db, make_api, settings, json_lines):
        api = await make_api()
        account = await api.new_account("acme", credits=10)
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, ["+33612300001", "+33612300002"])
        cid = await seed_campaign(db, account.id, [lst], reserve=2 * 700)
        await drain(db, Dispatcher(settings, db, {"sms": FakeProvider("sms")}, "w"), [cid])
        done = [
            x
            for x in json_lines()
            if x["logger"] == scheduler.__name__ and "completed" in x["message"]
        ]
        assert [x["campaign_id"] for x in done] == [cid]

    def test_exceptions_and_context(self):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
        try:
            raise ValueError("bad")
        except ValueError:
            record.exc_info = sys.exc_info()
        with logs.context(request_id="r1", campaign_id=7):
            line = json.loads(logs.JsonFormatter().format(record))
        assert line["message"] == "boom now" and line["level"] == "error"
        assert (line["request_id"], line["campaign_id"]) == ("r1", 7)
        assert "account_id" not in line
        assert "ValueError: bad" in line["exception"]
