"""Sign-in, cookies, CSRF, throttling, expiry and the ways a session ends."""

from typing import Any

from tests.conftest import AccountClient, Api
from tests.people.conftest import PASSWORD, Browser, FakeClock, add_user


class TestLogin:
    async def test_login_answers_the_user_and_account_and_sets_both_cookies(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        await add_user(api, account, "Ann@Example.com", "editor")
        browser: Browser = browsers()
        r = await browser.login("ann@example.COM")  # emails compare case-insensitively
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["email"] == "Ann@Example.com"
        assert body["user"]["role"] == "editor"
        assert body["user"]["lastLoginAt"] is not None
        assert "password" not in str(body).lower()
        assert body["account"]["id"] == account.id
        cookies = {c.split("=", 1)[0]: c.lower() for c in r.headers.get_list("set-cookie")}
        session, csrf = cookies["clarion_session"], cookies["clarion_csrf"]
        assert "httponly" in session and "samesite=lax" in session and "path=/" in session
        assert "secure" not in session  # plain http here
        assert "httponly" not in csrf and "samesite=lax" in csrf
        assert (await browser.get("/account")).json()["id"] == account.id

    async def test_secure_cookie_over_https(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        await add_user(api, account, "sec@example.com", "viewer")
        r = await api.client.post(
            "https://clarion.test/auth/login",
            json={"email": "sec@example.com", "password": PASSWORD},
        )
        assert r.status_code == 200
        assert all("secure" in c.lower() for c in r.headers.get_list("set-cookie"))

    async def test_unknown_email_and_wrong_password_are_the_same_401(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        await add_user(api, account, "bob@example.com", "viewer")
        wrong = await browsers().login("bob@example.com", "not the password")
        unknown = await browsers().login("nobody@example.com", PASSWORD)
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert "set-cookie" not in wrong.headers

    async def test_bad_bodies_are_422(self, api: Api) -> None:
        for body in ({}, {"email": "a@b.co"}, {"email": 3, "password": "x"}, []):
            r = await api.client.post("/auth/login", json=body)
            assert r.status_code == 422, r.text


class TestCsrf:
    async def test_writes_by_session_need_the_csrf_header(self, signed_in: Any) -> None:
        browser: Browser = await signed_in("editor")
        browser.csrf = False
        r = await browser.post("/lists", json={"name": "a"})
        assert r.status_code == 403
        assert r.json()["reason"] == "csrf"
        r = await browser.post("/lists", json={"name": "a"}, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        token = browser.client.cookies["clarion_csrf"]
        r = await browser.post("/lists", json={"name": "a"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 201, r.text
        assert (await browser.get("/lists")).status_code == 200  # reads need no header

    async def test_another_sessions_csrf_token_does_not_fit(self, signed_in: Any) -> None:
        one: Browser = await signed_in("editor")
        two: Browser = await signed_in("editor")
        other = two.client.cookies["clarion_csrf"]
        one.csrf = False
        one.client.cookies.set("clarion_csrf", other, domain="clarion.test")
        r = await one.post("/lists", json={"name": "a"}, headers={"X-CSRF-Token": other})
        assert r.status_code == 403

    async def test_api_keys_need_no_csrf(self, account: AccountClient) -> None:
        assert (await account.post("/lists", json={"name": "k"})).status_code == 201


class TestThrottle:
    async def test_ten_failures_then_429_even_with_the_right_password(
        self, api: Api, account: AccountClient, browsers: Any, clock: FakeClock
    ) -> None:
        await add_user(api, account, "eve@example.com", "viewer")
        browser: Browser = browsers()
        for _ in range(10):
            assert (await browser.login("EVE@example.com", "wrong password")).status_code == 401
        clock.advance(minutes=5)
        r = await browser.login("eve@example.com")
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 595 <= int(r.headers["Retry-After"]) <= 600
        # Another email is not affected.
        await add_user(api, account, "amy@example.com", "viewer")
        assert (await browser.login("amy@example.com")).status_code == 200
        clock.advance(minutes=10)  # the window is over
        assert (await browser.login("eve@example.com")).status_code == 200

    async def test_unknown_emails_are_throttled_alike(self, api: Api, browsers: Any) -> None:
        browser: Browser = browsers()
        for _ in range(10):
            assert (await browser.login("ghost@example.com", "x")).status_code == 401
        assert (await browser.login("ghost@example.com", "x")).status_code == 429

    async def test_failures_in_separate_windows_do_not_add_up(
        self, api: Api, account: AccountClient, browsers: Any, clock: FakeClock
    ) -> None:
        await add_user(api, account, "zed@example.com", "viewer")
        browser: Browser = browsers()
        for _ in range(9):
            await browser.login("zed@example.com", "wrong password")
        clock.advance(minutes=16)
        for _ in range(9):
            assert (await browser.login("zed@example.com", "wrong password")).status_code == 401
        assert (await browser.login("zed@example.com")).status_code == 200


class TestExpiry:
    async def test_twelve_hours_without_a_request_end_it(
        self, signed_in: Any, clock: FakeClock
    ) -> None:
        browser: Browser = await signed_in("viewer")
        clock.advance(hours=11, minutes=59)
        assert (await browser.get("/me")).status_code == 200  # the idle clock restarts
        clock.advance(hours=11, minutes=59)
        assert (await browser.get("/me")).status_code == 200
        clock.advance(hours=12)
        assert (await browser.get("/me")).status_code == 401

    async def test_seven_days_end_it_however_busy(self, signed_in: Any, clock: FakeClock) -> None:
        browser: Browser = await signed_in("viewer")
        for _ in range(15):  # 15 x 11 h = 6 days 21 h
            clock.advance(hours=11)
            assert (await browser.get("/me")).status_code == 200
        clock.advance(hours=3)
        assert (await browser.get("/me")).status_code == 401


class TestEnding:
    async def test_logout_ends_the_session_at_once(self, signed_in: Any, browsers: Any) -> None:
        browser: Browser = await signed_in("viewer")
        stolen = browser.client.cookies["clarion_session"]
        r = await browser.post("/auth/logout")
        assert r.status_code == 204
        assert (await browser.get("/me")).status_code == 401
        replay: Browser = browsers()
        replay.client.cookies.set("clarion_session", stolen, domain="clarion.test")
        assert (await replay.get("/me")).status_code == 401

    async def test_logout_needs_csrf(self, signed_in: Any) -> None:
        browser: Browser = await signed_in("viewer")
        browser.csrf = False
        assert (await browser.post("/auth/logout")).status_code == 403
        assert (await browser.get("/me")).status_code == 200

    async def test_password_change_ends_the_other_sessions(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        user = await add_user(api, account, "pat@example.com", "editor")
        here: Browser = browsers()
        there: Browser = browsers()
        assert (await here.login("pat@example.com")).status_code == 200
        assert (await there.login("pat@example.com")).status_code == 200
        new = "a brand new passphrase"
        r = await here.put(f"/users/{user['id']}", json={"password": new})
        assert r.status_code == 401  # currentPassword missing
        r = await here.put(
            f"/users/{user['id']}", json={"password": new, "currentPassword": "wrong one!"}
        )
        assert r.status_code == 401
        assert (await there.get("/me")).status_code == 200  # nothing changed yet
        r = await here.put(
            f"/users/{user['id']}", json={"password": new, "currentPassword": PASSWORD}
        )
        assert r.status_code == 200, r.text
        assert (await here.get("/me")).status_code == 200
        assert (await there.get("/me")).status_code == 401
        assert (await browsers().login("pat@example.com")).status_code == 401
        assert (await browsers().login("pat@example.com", new)).status_code == 200

    async def test_deleting_a_user_ends_all_their_sessions(
        self, api: Api, account: AccountClient, browsers: Any
    ) -> None:
        user = await add_user(api, account, "gone@example.com", "manager")
        browser: Browser = browsers()
        assert (await browser.login("gone@example.com")).status_code == 200
        assert (await account.delete(f"/users/{user['id']}")).status_code == 204
        assert (await browser.get("/me")).status_code == 401
        assert (await browsers().login("gone@example.com")).status_code == 401
