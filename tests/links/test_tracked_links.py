"""Tracked links end to end: a campaign created and confirmed over HTTP, materialized and sent
by the engine to a provider that keeps the texts, then its short links followed (no key)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from sqlalchemy import func, select, text, update

from clarion.audience.models import Contact
from clarion.hooks.models import Hook
from clarion.links import service
from clarion.links.models import Click, Link
from tests.conftest import AccountClient, assert_ledger_consistent
from tests.hooks.conftest import outbox_events
from tests.sending.conftest import drain, phones, seed_contacts, set_rates

BASE = "http://127.0.0.1:8000/l/"
SHORT = re.compile(re.escape(BASE) + r"([A-Za-z0-9_-]{7})(?![A-Za-z0-9_-])")


async def _send(db, account: AccountClient, make_dispatcher, text: str, n: int = 4) -> int:
    await set_rates(db, [("sms", "*", "", 700), ("rcs", "*", "", 300)])
    names = [f"P{i}" for i in range(n)]
    lst = await seed_contacts(db, account.id, phones(n), first_names=names)
    r = await account.post(
        "/campaigns",
        json={
            "name": "links",
            "channel": "sms",
            "message": {"text": text},
            "listIds": [lst],
            "trackLinks": True,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["trackLinks"] is True
    cid = r.json()["id"]
    r = await account.put(f"/campaigns/{cid}/confirm", json={})
    assert r.status_code == 200, r.text
    await drain(db, make_dispatcher(), [cid])
    return int(cid)


def _codes(text: str) -> list[str]:
    return SHORT.findall(text)


class TestEndToEnd:
    async def test_each_recipient_gets_own_links_that_redirect_and_count(
        self, db, api, account, make_dispatcher, sms
    ):
        text = "Hi {{firstName}}: https://shop.example/sale?x=1&y=2. Also (https://shop.example/b)"
        cid = await _send(db, account, make_dispatcher, text)
        assert len(sms.sent) == 4
        codes = []
        for m in sms.sent:
            found = _codes(m.text or "")
            assert len(found) == 2, m.text
            assert "shop.example" not in (m.text or "")
            assert (m.text or "").endswith(")")  # the URL ended before the parenthesis
            codes += found
        assert len(set(codes)) == 8  # one code per recipient and URL

        # No key: a recipient's phone follows the link.
        first = codes[0]
        r = await api.client.get(f"/l/{first}")
        assert r.status_code == 302
        assert r.headers["location"] == "https://shop.example/sale?x=1&y=2"
        for _ in range(2):
            r = await api.client.get(f"/l/{codes[1]}", headers={"User-Agent": "phone/1.0"})
            assert r.headers["location"] == "https://shop.example/b"
        r = await api.client.get(f"/l/{codes[2]}")  # another recipient
        assert r.status_code == 302

        c = (await account.get(f"/campaigns/{cid}")).json()
        assert c["stats"]["clicks"] == 4
        assert c["stats"]["uniqueClicks"] == 2
        assert c["stats"]["recipients"] == 4  # the partition is untouched
        stats = (await account.get("/campaigns/stats")).json()
        assert (stats["clicks"], stats["uniqueClicks"]) == (4, 2)
        assert stats["byChannel"]["sms"]["clicks"] == 4

        links = (await account.get(f"/campaigns/{cid}/links")).json()
        assert links["total"] == 2
        assert links["items"] == [
            {"url": "https://shop.example/b", "clicks": 2, "uniqueClicks": 1},
            {"url": "https://shop.example/sale?x=1&y=2", "clicks": 2, "uniqueClicks": 2},
        ]
        items = (await account.get(f"/campaigns/{cid}/messages")).json()["items"]
        clicked = sorted(i["clicks"] for i in items)
        assert clicked == [0, 0, 1, 3]
        assert all((i["firstClickedAt"] is None) == (i["clicks"] == 0) for i in items)
        async with db.session(write=False) as s:
            rows = (await s.execute(select(Click).order_by(Click.id))).scalars().all()
        assert len(rows) == 4
        assert rows[1].user_agent == "phone/1.0"
        assert rows[0].ip_hash and len(rows[0].ip_hash) == 64  # hashed, not the address
        await assert_ledger_consistent(db, account.id)

    async def test_personalized_urls_are_tracked_per_recipient(
        self, db, account, make_dispatcher, sms
    ):
        cid = await _send(db, account, make_dispatcher, "Yours: https://x.example/u/{{firstName}}")
        async with db.session(write=False) as s:
            urls = set((await s.execute(select(Link.url))).scalars())
        assert urls == {f"https://x.example/u/P{i}" for i in range(4)}
        assert all(len(_codes(m.text or "")) == 1 for m in sms.sent)
        links = (await account.get(f"/campaigns/{cid}/links")).json()
        assert links["total"] == 4

    async def test_urls_in_contact_values_are_tracked_too(self, db, account, make_dispatcher, sms):
        # The text's own URL is the same for all (found once); a value holding a URL makes
        # that recipient's text be searched itself.
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(3), first_names=["A", "B", "C:D"])
        async with db.transaction() as s:
            await s.execute(
                update(Contact)
                .where(Contact.phone == phones(3)[0])
                .values(attributes={"link": "https://own.example/a"})
            )
        text = "Hi {{firstName}}, https://static.example/ {{attributes.link}}"
        r = await account.post(
            "/campaigns",
            json={"name": "v", "channel": "sms", "message": {"text": text}, "listIds": [lst],
                  "trackLinks": True},
        )  # fmt: skip
        cid = r.json()["id"]
        assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
        await drain(db, make_dispatcher(), [cid])
        links = (await account.get(f"/campaigns/{cid}/links")).json()["items"]
        assert sorted(i["url"] for i in links) == [
            "https://own.example/a",
            "https://static.example/",
        ]
        per_text = sorted(len(_codes(m.text or "")) for m in sms.sent)
        assert per_text == [1, 1, 2]
        assert all("example" not in (m.text or "") for m in sms.sent)

    async def test_without_tracking_urls_are_sent_as_written(
        self, db, account, make_dispatcher, sms
    ):
        await set_rates(db, [("sms", "*", "", 700)])
        lst = await seed_contacts(db, account.id, phones(2))
        r = await account.post(
            "/campaigns",
            json={"name": "plain", "channel": "sms", "message": {"text": "https://a.example/z"},
                  "listIds": [lst]},
        )  # fmt: skip
        cid = r.json()["id"]
        assert r.json()["trackLinks"] is False
        assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
        await drain(db, make_dispatcher(), [cid])
        assert [m.text for m in sms.sent] == ["https://a.example/z"] * 2
        async with db.session(write=False) as s:
            assert (await s.execute(select(func.count()).select_from(Link))).scalar_one() == 0


class TestRedirect:
    async def test_unknown_and_malformed_codes_are_404(self, api, account):
        for code in ("AAAAAAA", "short", "x" * 64, "y" * 500, "a.b-c_d", "%20%20%20%20%20%20%20"):
            r = await api.client.get(f"/l/{code}")
            assert r.status_code == 404, (code, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")

    async def test_a_browser_navigation_gets_the_redirect_not_the_console(
        self, db, api, account, make_dispatcher, sms
    ):
        await _send(db, account, make_dispatcher, "https://b.example/", n=1)
        code = _codes(sms.sent[0].text or "")[0]
        r = await api.client.get(
            f"/l/{code}", headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
        )
        assert r.status_code == 302 and r.headers["location"] == "https://b.example/"

    async def test_concurrent_clicks_are_all_counted(self, db, api, account, make_dispatcher, sms):
        await _send(db, account, make_dispatcher, "https://c.example/", n=2)
        code = _codes(sms.sent[0].text or "")[0]
        other = _codes(sms.sent[1].text or "")[0]
        targets = [code] * 60 + [other] * 20
        answers = await asyncio.gather(*(api.client.get(f"/l/{c}") for c in targets))
        assert Counter(r.status_code for r in answers) == {302: 80}
        async with db.session(write=False) as s:
            counted = dict((await s.execute(select(Link.code, Link.clicks))).all())
            rows = (await s.execute(select(func.count()).select_from(Click))).scalar_one()
        assert counted[code] == 60 and counted[other] == 20
        assert rows == 80

    async def test_redirects_survive_a_database_restart(
        self, db, api, account, make_dispatcher, sms
    ):
        """After every connection of the database died at once (as in a restart: their
        backends terminated), concurrent redirects that take dead ones from the pool still
        answer 302 (the pool pings a connection as it is checked out) and their clicks are
        all written."""
        if db.is_sqlite:
            pytest.skip("a database server restart: PostgreSQL")
        await _send(db, account, make_dispatcher, "https://r.example/", n=1)
        code = _codes(sms.sent[0].text or "")[0]
        warm = await asyncio.gather(*(api.client.get(f"/l/{code}") for _ in range(6)))
        assert {r.status_code for r in warm} == {302}
        pooled = db.writer.sync_engine.pool.checkedin()
        assert pooled > 1  # several connections in the pool, each about to be found dead
        async with db.session() as s:
            killed = (
                await s.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
        assert killed >= pooled
        answers = await asyncio.gather(*(api.client.get(f"/l/{code}") for _ in range(6)))
        assert [r.status_code for r in answers] == [302] * 6
        assert {r.headers["location"] for r in answers} == {"https://r.example/"}
        async with db.session(write=False) as s:
            clicks = (await s.execute(select(Link.clicks).where(Link.code == code))).scalar_one()
        assert clicks == 12


class TestOwnership:
    async def test_another_accounts_links_are_404(self, db, api, account, make_dispatcher, sms):
        cid = await _send(db, account, make_dispatcher, "https://d.example/", n=1)
        other = await api.new_account("other", credits=10)
        assert (await other.get(f"/campaigns/{cid}/links")).status_code == 404
        assert (await account.get(f"/campaigns/{cid}/links")).status_code == 200
        assert (await account.get("/campaigns/999999/links")).status_code == 404
        r = await api.client.get(f"/campaigns/{cid}/links")  # no key
        assert r.status_code == 401


class TestCampaignRules:
    async def test_track_links_is_for_sms_and_rcs_text(self, account):
        r = await account.post(
            "/campaigns",
            json={"name": "w", "channel": "whatsapp", "message": {"templateId": 1},
                  "trackLinks": True},
        )  # fmt: skip
        assert r.status_code == 422
        assert any(e["field"] == "trackLinks" for e in r.json()["errors"])
        r = await account.post(
            "/campaigns",
            json={"name": "r", "channel": "rcs", "message": {"text": "https://e.example"},
                  "trackLinks": True},
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["trackLinks"] is True
        cid = r.json()["id"]
        r = await account.put(f"/campaigns/{cid}", json={"trackLinks": None})
        assert r.status_code == 422
        r = await account.put(f"/campaigns/{cid}", json={"trackLinks": False})
        assert r.status_code == 200 and r.json()["trackLinks"] is False
        r = await account.put(f"/campaigns/{cid}", json={"trackLinks": "yes please"})
        assert r.status_code == 422


async def test_link_codes_are_unique_and_url_safe(db, account, make_dispatcher, sms):
    await _send(db, account, make_dispatcher, "a https://f.example/1 b https://f.example/2", n=30)
    async with db.session(write=False) as s:
        codes = list((await s.execute(select(Link.code))).scalars())
    assert len(codes) == 60 == len(set(codes))
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{7}", c) for c in codes)


async def test_colliding_codes_are_drawn_again(db, account, make_dispatcher, sms, monkeypatch):
    real = service.new_codes
    draws: list[int] = []

    def colliding(count: int) -> list[str]:
        # The first draw gives every link the same code: one is stored, the rest collide
        # (with it and with each other) and must be drawn again, only those.
        draws.append(count)
        return ["SAMEONE"] * count if len(draws) == 1 else real(count)

    monkeypatch.setattr(service, "new_codes", colliding)
    await _send(db, account, make_dispatcher, "https://g.example/ https://g.example/2", n=5)
    assert draws == [10, 9]
    async with db.session(write=False) as s:
        codes = list((await s.execute(select(Link.code))).scalars())
    assert len(codes) == 10 == len(set(codes)) and "SAMEONE" in codes
    assert all(len(_codes(m.text or "")) == 2 for m in sms.sent)


async def test_colliding_codes_of_recipients_searched_one_by_one_are_drawn_again(
    db, account, make_dispatcher, sms, monkeypatch
):
    # Rows built by the database (the text's URL for each message) and rows sent for the
    # recipient whose own text was searched collide alike; only the missing are drawn again.
    real = service.new_codes
    draws: list[int] = []

    def colliding(count: int) -> list[str]:
        draws.append(count)
        return ["SAMEONE"] * count if len(draws) == 1 else real(count)

    monkeypatch.setattr(service, "new_codes", colliding)
    await set_rates(db, [("sms", "*", "", 700)])
    lst = await seed_contacts(db, account.id, phones(3), first_names=["A", "B", "C"])
    async with db.transaction() as s:
        await s.execute(
            update(Contact)
            .where(Contact.phone == phones(3)[0])
            .values(attributes={"link": "https://own.example/a"})
        )
    text = "Hi {{firstName}}, https://static.example/ {{attributes.link}}"
    r = await account.post(
        "/campaigns",
        json={"name": "v", "channel": "sms", "message": {"text": text}, "listIds": [lst],
              "trackLinks": True},
    )  # fmt: skip
    cid = r.json()["id"]
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    await drain(db, make_dispatcher(), [cid])
    assert draws == [4, 3]
    async with db.session(write=False) as s:
        rows = (await s.execute(select(Link.code, Link.url))).all()
    assert len(rows) == 4 == len({c for c, _ in rows}) and "SAMEONE" in {c for c, _ in rows}
    assert sorted(u for _, u in rows) == ["https://own.example/a"] + ["https://static.example/"] * 3
    assert sorted(len(_codes(m.text or "")) for m in sms.sent) == [1, 1, 2]


async def test_a_click_is_a_message_clicked_event_for_the_hooks(
    db, api, account, make_dispatcher, sms
):
    async with db.transaction() as s:
        s.add(
            Hook(
                account_id=account.id,
                url="https://hooks.example/in",
                event_types=" message.clicked ",
                secret="whsec_dGVzdA==",
            )
        )
    await _send(db, account, make_dispatcher, "https://c.example/", n=2)
    code = _codes(sms.sent[0].text or "")[0]
    for _ in range(2):
        assert (await api.client.get(f"/l/{code}")).status_code == 302
    async with db.session(write=False) as s:
        clicked = (await s.execute(select(Link.message_id).where(Link.code == code))).scalar_one()
    # One event per batch of clicks: the two redirects ran one after the other.
    events = await outbox_events(db)
    assert [e.type for e in events] == ["message.clicked", "message.clicked"]
    data = events[0].data
    assert data["messageId"] == clicked and data["phone"].startswith("+")
