"""GET/PUT /account/compliance: defaults, validation with paths, roles, isolation."""

from typing import Any

from tests.conftest import AccountClient, Api

US_ROW = {
    "country": "US",
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "08:00",
    "end": "21:00",
    "holidays": True,
}
DOCUMENT: dict[str, Any] = {
    "sendingHours": [
        US_ROW,
        {**US_ROW, "region": "US-FL", "end": "20:00"},
        {
            "country": "FR",
            "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
            "start": "08:00",
            "end": "20:00",
            "holidays": False,
        },
    ],
    "frequencyCap": {"messages": 2, "periodHours": 24},
    "requireConsent": True,
    "optOutKeywords": ["STOP", "ARRET"],
    "optInKeywords": ["START"],
    "helpKeywords": ["HELP"],
    "optOutReply": "Bye.",
    "optInReply": None,
    "helpReply": "Call us.",
}


def _fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


class TestDefaults:
    async def test_a_new_account_has_no_hours_no_cap_and_the_usual_keywords(
        self, account: AccountClient
    ) -> None:
        r = await account.get("/account/compliance")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["sendingHours"] == []
        assert body["frequencyCap"] is None
        assert body["requireConsent"] is False
        assert "STOP" in body["optOutKeywords"] and "BAJA" in body["optOutKeywords"]
        assert body["optInKeywords"] == ["START", "UNSTOP", "YES"]
        assert body["helpKeywords"] == ["HELP", "INFO"]
        assert body["optOutReply"].startswith("You will receive no more messages")
        assert body["helpReply"] is None


class TestUpdate:
    async def test_the_whole_document_round_trips(self, account: AccountClient) -> None:
        r = await account.put("/account/compliance", json=DOCUMENT)
        assert r.status_code == 200, r.text
        again = (await account.get("/account/compliance")).json()
        assert again == r.json()
        assert again["sendingHours"][1] == {**US_ROW, "region": "US-FL", "end": "20:00"}
        assert again["sendingHours"][0]["region"] is None
        assert again["frequencyCap"] == {"messages": 2, "periodHours": 24}
        assert again["requireConsent"] is True
        assert again["optInReply"] is None

    async def test_fields_left_out_keep_their_value(self, account: AccountClient) -> None:
        await account.put("/account/compliance", json=DOCUMENT)
        r = await account.put("/account/compliance", json={"frequencyCap": None})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["frequencyCap"] is None
        assert len(body["sendingHours"]) == 3
        assert body["optOutKeywords"] == ["STOP", "ARRET"]

    async def test_keywords_are_stored_upper_case_without_accents(
        self, account: AccountClient
    ) -> None:
        r = await account.put(
            "/account/compliance", json={"optOutKeywords": [" Arrêt ", "stop", "STOP!"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["optOutKeywords"] == ["ARRET", "STOP"]

    async def test_another_account_is_not_affected(self, api: Api, account: AccountClient) -> None:
        await account.put("/account/compliance", json=DOCUMENT)
        other = await api.new_account("other")
        assert (await other.get("/account/compliance")).json()["sendingHours"] == []


class TestValidation:
    async def test_rows_are_checked_with_paths(self, account: AccountClient) -> None:
        rows = [
            {**US_ROW, "country": "XX"},
            {**US_ROW, "region": "FR-75"},
            {**US_ROW, "start": "21:00", "end": "08:00"},
            {**US_ROW, "days": ["mon", "funday"]},
            {**US_ROW, "start": "8h"},
            {**US_ROW, "country": "*", "region": "US-FL"},
            {**US_ROW, "days": []},
            {**US_ROW, "days": ["mon", "mon"]},
        ]
        fields = _fields(await account.put("/account/compliance", json={"sendingHours": rows}))
        assert "sendingHours[0].country" in fields
        assert "sendingHours[1].region" in fields
        assert "after start" in fields["sendingHours[2].end"]
        assert "sendingHours[3].days[1]" in fields
        assert "sendingHours[4].start" in fields
        assert "sendingHours[5].region" in fields
        assert "sendingHours[6].days" in fields
        assert "sendingHours[7].days" in fields
        # Nothing was saved.
        assert (await account.get("/account/compliance")).json()["sendingHours"] == []

    async def test_a_day_may_end_at_midnight(self, account: AccountClient) -> None:
        row = {**US_ROW, "country": "*", "start": "20:00", "end": "24:00"}
        r = await account.put("/account/compliance", json={"sendingHours": [row]})
        assert r.status_code == 200, r.text
        bad = {**row, "start": "24:00"}
        fields = _fields(await account.put("/account/compliance", json={"sendingHours": [bad]}))
        assert "sendingHours[0].start" in fields

    async def test_the_cap_needs_positive_numbers(self, account: AccountClient) -> None:
        fields = _fields(
            await account.put(
                "/account/compliance", json={"frequencyCap": {"messages": 0, "periodHours": 0}}
            )
        )
        assert set(fields) == {"frequencyCap.messages", "frequencyCap.periodHours"}

    async def test_lists_and_flags_cannot_be_null(self, account: AccountClient) -> None:
        body = {"sendingHours": None, "requireConsent": None, "optOutKeywords": None}
        fields = _fields(await account.put("/account/compliance", json=body))
        assert set(fields) == {"sendingHours", "requireConsent", "optOutKeywords"}

    async def test_a_keyword_belongs_to_one_list(self, account: AccountClient) -> None:
        fields = _fields(await account.put("/account/compliance", json={"optInKeywords": ["stop"]}))
        assert "optInKeywords[0]" in fields

    async def test_unknown_fields_and_empty_replies_are_refused(
        self, account: AccountClient
    ) -> None:
        fields = _fields(
            await account.put("/account/compliance", json={"quietHours": [], "helpReply": ""})
        )
        assert set(fields) == {"quietHours", "helpReply"}


class TestRoles:
    async def test_a_viewer_reads_and_an_editor_cannot_write(self, account: AccountClient) -> None:
        keys = {}
        for role in ("viewer", "editor", "manager"):
            r = await account.post("/account/keys", json={"name": role, "role": role})
            keys[role] = AccountClient(account.client, account.id, r.json()["key"])
        assert (await keys["viewer"].get("/account/compliance")).status_code == 200
        r = await keys["editor"].put("/account/compliance", json={"requireConsent": True})
        assert r.status_code == 403
        assert r.json()["requiredRole"] == "manager"
        r = await keys["manager"].put("/account/compliance", json={"requireConsent": True})
        assert r.status_code == 200, r.text

    async def test_the_change_is_audited(self, account: AccountClient) -> None:
        await account.put("/account/compliance", json={"requireConsent": True})
        items = (await account.get("/account/audit")).json()["items"]
        assert items[0]["action"] == "account.compliance.update"
        assert items[0]["detail"] == {"requireConsent": True}


class TestContactPlace:
    async def test_timezone_and_region_are_validated_and_kept(self, account: AccountClient) -> None:
        bad = {"phone": "+33612345003", "timezone": "Mars/Base", "region": "XX-99"}
        assert set(_fields(await account.post("/contacts", json=bad))) == {"timezone", "region"}
        good = {"phone": "+33612345003", "timezone": "America/Chicago", "region": "us-tx"}
        r = await account.post("/contacts", json=good)
        assert r.status_code == 201, r.text
        assert (r.json()["timezone"], r.json()["region"]) == ("America/Chicago", "US-TX")
        cid = r.json()["id"]
        r = await account.put(f"/contacts/{cid}", json={"timezone": None, "region": "FR-75C"})
        assert r.status_code == 200, r.text
        assert (r.json()["timezone"], r.json()["region"]) == (None, "FR-75C")
