"""A contact's `region` (ISO 3166-2) and `timezone` (IANA): created, updated, cleared, read
back, and validated."""

import pytest


async def test_set_read_update_and_clear(account):
    created = await account.post(
        "/contacts",
        json={"phone": "+12025550100", "region": "us-fl", "timezone": "America/New_York"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["region"] == "US-FL" and body["timezone"] == "America/New_York"
    cid = body["id"]
    assert (await account.get(f"/contacts/{cid}")).json()["region"] == "US-FL"

    moved = await account.put(f"/contacts/{cid}", json={"region": "US-CA"})
    assert moved.json()["region"] == "US-CA"
    assert moved.json()["timezone"] == "America/New_York"  # untouched

    cleared = await account.put(f"/contacts/{cid}", json={"region": None, "timezone": None})
    assert cleared.json()["region"] is None and cleared.json()["timezone"] is None

    plain = await account.post("/contacts", json={"phone": "+12025550101"})
    assert plain.json()["region"] is None and plain.json()["timezone"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("region", "US"),
        ("region", "XX-ZZ"),
        ("region", "FL"),
        ("region", "US-FLORIDA"),
        ("region", 12),
        ("timezone", "Mars/Olympus"),
        ("timezone", "america/new_york"),
        ("timezone", ""),
        ("timezone", "x" * 65),
    ],
)
async def test_invalid_values_are_422(account, field, value):
    r = await account.post("/contacts", json={"phone": "+12025550102", field: value})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    created = await account.post("/contacts", json={"phone": "+12025550103"})
    r = await account.put(f"/contacts/{created.json()['id']}", json={field: value})
    assert r.status_code == 422, r.text
