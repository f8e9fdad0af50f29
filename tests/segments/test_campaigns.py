"""Campaigns targeting lists, segments and a filter: estimated and sent end to end, to
exactly the expected contacts, on both databases."""

from typing import Any

from clarion.db.base import utcnow
from clarion.sending.materialize import materialize, materialize_chunk
from tests.conftest import AccountClient, assert_ledger_consistent
from tests.sending.conftest import campaign, drain, set_rates

PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {"phone": "+33612340001", "firstName": "Ann", "attributes": {"tier": "gold"}},
    "bob": {"phone": "+33612340002", "firstName": "Bob"},
    "frank": {"phone": "+33612340003", "firstName": "Frank"},
    "hal": {"phone": "+33612340004", "firstName": "Hal", "attributes": {"tier": "gold"}},
    "gina": {"phone": "+33612340005", "firstName": "Gina", "attributes": {"tier": "gold"}},
    "cy": {"phone": "+12025550106", "firstName": "Cy"},
    "ivy": {"phone": "+12025550107", "firstName": "Ivy"},
    "dee": {"phone": "+33612340008", "firstName": "Dee", "attributes": {"tier": "silver"}},
}


def c(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


async def _people(account: AccountClient) -> dict[str, int]:
    ids = {}
    for name, body in PEOPLE.items():
        r = await account.post("/contacts", json=body)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    return ids


async def _list(account: AccountClient, ids: list[int]) -> int:
    lid = (await account.post("/lists", json={"name": "l"})).json()["id"]
    r = await account.post(f"/lists/{lid}/contacts", json={"contactIds": ids})
    assert r.json()["added"] == len(ids), r.text
    return lid


async def _segment(account: AccountClient, raw: dict[str, Any]) -> int:
    r = await account.post("/segments", json={"name": "s", "filter": raw})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _sms(account: AccountClient, **audience: Any) -> Any:
    body = {"name": "c", "channel": "sms", "message": {"text": "Hi {{firstName}}"}, **audience}
    return await account.post("/campaigns", json=body)


async def _messages(account: AccountClient, cid: int) -> dict[int, str]:
    items = (await account.get(f"/campaigns/{cid}/messages?limit=100")).json()["items"]
    return {m["contactId"]: m["status"] for m in items}


async def test_lists_segments_and_filter_estimated_and_sent(db, account, make_dispatcher, sms):
    await set_rates(db, [("sms", "*", "", 700)])
    p = await _people(account)
    one = await _list(account, [p["ann"], p["bob"]])
    two = await _list(account, [p["bob"], p["frank"]])
    excluded = await _list(account, [p["gina"]])
    gold = await _segment(account, c("attributes.tier", "eq", "gold"))
    usa = await _segment(account, c("country", "eq", "US"))
    opted = await account.put(f"/contacts/{p['hal']}", json={"optOuts": ["sms"]})
    assert opted.status_code == 200

    created = await _sms(
        account,
        listIds=[one, two],
        excludeListIds=[excluded],
        segmentIds=[gold, usa],
        filter={"not": c("firstName", "eq", "Ivy")},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["segmentIds"] == [gold, usa]
    assert body["filter"] == {"not": c("firstName", "eq", "Ivy")}
    cid = body["id"]

    # Union: ann bob frank (lists), ann hal gina (gold), cy ivy (US); minus gina (excluded),
    # ivy (filter), hal (opted out). Targeted twice: bob (two lists), ann (list and segment).
    # The segment is deleted after the campaign was made: the campaign kept its filter.
    assert (await account.delete(f"/segments/{gold}")).status_code == 204
    estimate = (await account.post(f"/campaigns/{cid}/calculateGoal")).json()
    assert estimate["recipients"] == 4, estimate
    assert estimate["excluded"] == {
        "duplicates": 2,
        "optedOut": 1,
        "invalid": 0,
        "frequencyCapped": 0,
        "noConsent": 0,
    }
    assert estimate["units"] == 4 and estimate["price"] == 0.28

    confirmed = await account.put(f"/campaigns/{cid}/confirm", json={})
    assert confirmed.status_code == 200, confirmed.text
    await drain(db, make_dispatcher(), [cid], chunk=2)  # several chunks of the audience

    expected = {p[n] for n in ("ann", "bob", "frank", "cy")}
    assert set(await _messages(account, cid)) == expected
    assert sorted(m.to for m in sms.sent) == sorted(
        PEOPLE[n]["phone"] for n in ("ann", "bob", "frank", "cy")
    )
    assert {m.text for m in sms.sent} == {"Hi Ann", "Hi Bob", "Hi Frank", "Hi Cy"}
    done = await campaign(db, cid)
    assert done.status == "completed" and done.recipients == 4 and done.sent == 4
    await assert_ledger_consistent(db, account.id)


async def test_only_segments_target_the_matching_contacts(db, account, make_dispatcher, sms):
    await set_rates(db, [("sms", "*", "", 700)])
    p = await _people(account)
    gold = await _segment(account, c("attributes.tier", "eq", "gold"))
    cid = (await _sms(account, segmentIds=[gold])).json()["id"]
    estimate = (await account.post(f"/campaigns/{cid}/calculateGoal")).json()
    assert estimate["recipients"] == 3
    assert estimate["excluded"]["duplicates"] == 0
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    await drain(db, make_dispatcher(), [cid])
    assert set(await _messages(account, cid)) == {p["ann"], p["hal"], p["gina"]}


async def test_a_filter_alone_selects_among_all_contacts(db, account, make_dispatcher, sms):
    await set_rates(db, [("sms", "*", "", 700)])
    p = await _people(account)
    usa = c("phone", "startsWith", "+1")
    cid = (await _sms(account, filter=usa)).json()["id"]
    estimate = (await account.post(f"/campaigns/{cid}/calculateGoal")).json()
    assert estimate["recipients"] == 2 and estimate["excluded"]["duplicates"] == 0
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    await drain(db, make_dispatcher(), [cid])
    assert set(await _messages(account, cid)) == {p["cy"], p["ivy"]}


async def test_a_filter_narrows_lists(db, account, make_dispatcher, sms):
    await set_rates(db, [("sms", "*", "", 700)])
    p = await _people(account)
    everyone = await _list(account, list(p.values()))
    created = await _sms(account, listIds=[everyone], filter=c("attributes.tier", "exists", True))
    cid = created.json()["id"]
    estimate = (await account.post(f"/campaigns/{cid}/calculateGoal")).json()
    assert estimate["recipients"] == 4
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    await drain(db, make_dispatcher(), [cid])
    assert set(await _messages(account, cid)) == {p[n] for n in ("ann", "hal", "gina", "dee")}


async def test_the_estimate_follows_a_changed_filter(db, account):
    await set_rates(db, [("sms", "*", "", 700)])
    await _people(account)
    cid = (await _sms(account, filter=c("country", "eq", "FR"))).json()["id"]
    first = (await account.post(f"/campaigns/{cid}/calculateGoal")).json()
    assert first["recipients"] == 6
    put = await account.put(f"/campaigns/{cid}", json={"filter": c("country", "eq", "US")})
    assert put.status_code == 200, put.text
    price = (await account.get(f"/campaigns/{cid}/price")).json()
    assert price["recipients"] == 2
    cleared = await account.put(f"/campaigns/{cid}", json={"filter": None})
    assert cleared.json()["filter"] is None
    empty = await account.put(f"/campaigns/{cid}/confirm", json={})
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "listIds"


async def test_bad_targets_are_422(api, account):
    other = await api.new_account("other")
    theirs = await _segment(other, c("country", "eq", "FR"))
    unknown = await _sms(account, segmentIds=[theirs])
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "segmentIds"
    bad = await _sms(account, filter={"all": [c("country", "eq", "FR"), c("size", "eq", 1)]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "filter.all[1].field"
    cid = (await _sms(account)).json()["id"]
    put = await account.put(f"/campaigns/{cid}", json={"filter": {"any": []}})
    assert put.status_code == 422 and put.json()["errors"][0]["field"] == "filter.any"
    assert (await account.get("/campaigns")).json()["total"] == 1


async def test_an_interrupted_materialization_resumes_without_duplicates(db, account):
    await set_rates(db, [("sms", "*", "", 700)])
    p = await _people(account)
    gold = await _segment(account, c("attributes.tier", "exists", True))
    cid = (await _sms(account, segmentIds=[gold], filter=c("country", "eq", "FR"))).json()["id"]
    assert (await account.put(f"/campaigns/{cid}/confirm", json={})).status_code == 200
    async with db.transaction() as s:
        first = await materialize_chunk(s, cid, 2, utcnow())
    assert first is not None and first.inserted == 2 and not first.done
    assert await materialize(db, cid, 2) == 2  # the rest, after the committed marker
    assert await materialize(db, cid, 2) == 0  # complete: nothing twice
    expected = {p[n] for n in ("ann", "hal", "gina", "dee")}
    assert set(await _messages(account, cid)) == expected
    assert (await campaign(db, cid)).recipients == 4
