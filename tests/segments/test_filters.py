"""Every op on every field type, run as SQL on both databases: the contacts each filter
matches (by the compiled WHERE clause) and the count the API answers for it."""

import random
from typing import Any

from sqlalchemy import select

from clarion.audience.models import Contact
from clarion.db.dialect import is_postgres
from clarion.segments.compile import to_sql
from clarion.segments.filters import OPS, Group, parse
from tests.segments.conftest import CAST

ALL = set(CAST)


def c(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


# (filter, the names it matches); see the cast in conftest.py.
CASES: list[tuple[dict[str, Any], set[str]]] = [
    # phone
    (c("phone", "eq", "+33612345001"), {"ann"}),
    (c("phone", "ne", "+33612345001"), ALL - {"ann"}),
    (c("phone", "in", ["+33612345001", "+12025550103", "+1"]), {"ann", "cy"}),
    (c("phone", "nin", ["+33612345001"]), ALL - {"ann"}),
    (c("phone", "startsWith", "+336"), {"ann", "dee", "eve"}),
    (c("phone", "contains", "2345"), {"ann", "bob", "dee", "eve"}),
    (c("phone", "lt", "+3"), {"cy"}),
    (c("phone", "gte", "+4"), {"bob"}),
    (c("phone", "exists", True), ALL),
    (c("phone", "exists", False), set()),
    # country (values upper-cased)
    (c("country", "eq", "fr"), {"ann", "dee", "eve"}),
    (c("country", "ne", "FR"), {"bob", "cy"}),
    (c("country", "in", ["DE", "us"]), {"bob", "cy"}),
    (c("country", "nin", ["FR", "DE"]), {"cy"}),
    (c("country", "lt", "FR"), {"bob"}),
    (c("country", "lte", "FR"), {"ann", "bob", "dee", "eve"}),
    (c("country", "gt", "FR"), {"cy"}),
    (c("country", "gte", "FR"), {"ann", "cy", "dee", "eve"}),
    (c("country", "contains", "E"), {"bob"}),
    (c("country", "startsWith", "U"), {"cy"}),
    # region (nullable)
    (c("region", "eq", "us-fl"), {"cy"}),
    (c("region", "ne", "US-FL"), ALL - {"cy"}),
    (c("region", "in", ["US-FL", "FR-75C"]), {"ann", "cy"}),
    (c("region", "nin", ["US-FL"]), ALL - {"cy"}),
    (c("region", "startsWith", "US-"), {"cy"}),
    (c("region", "contains", "-7"), {"ann"}),
    (c("region", "gt", "FR-75C"), {"cy"}),
    (c("region", "exists", True), {"ann", "cy"}),
    (c("region", "exists", False), {"bob", "dee", "eve"}),
    # firstName: code point order ("Évé" after "Cy"), case-sensitive
    (c("firstName", "eq", "Ann"), {"ann"}),
    (c("firstName", "eq", "ann"), set()),
    (c("firstName", "ne", "Ann"), ALL - {"ann"}),
    (c("firstName", "in", ["Ann", "Cy"]), {"ann", "cy"}),
    (c("firstName", "nin", ["Ann"]), ALL - {"ann"}),
    (c("firstName", "lt", "Bob"), {"ann"}),
    (c("firstName", "lte", "Bob"), {"ann", "bob"}),
    (c("firstName", "gt", "Cy"), {"eve"}),
    (c("firstName", "gte", "Cy"), {"cy", "eve"}),
    (c("firstName", "contains", "v"), {"eve"}),
    (c("firstName", "startsWith", "É"), {"eve"}),
    (c("firstName", "exists", False), {"dee"}),
    # lastName (a quote in the value is data)
    (c("lastName", "eq", "O'Hara"), {"cy"}),
    (c("lastName", "contains", "'"), {"cy"}),
    (c("lastName", "eq", "' OR '1'='1"), set()),
    (c("lastName", "exists", True), {"ann", "cy"}),
    (c("lastName", "ne", "Lee"), ALL - {"ann"}),
    # createdAt (any offset; compared in time)
    (c("createdAt", "eq", "2026-06-01T02:00:00+02:00"), {"cy"}),
    (c("createdAt", "ne", "2026-06-01T00:00:00Z"), ALL - {"cy"}),
    (c("createdAt", "in", ["2026-01-01T00:00:00Z", "2026-09-01T12:30:00Z"]), {"ann", "dee"}),
    (c("createdAt", "nin", ["2026-01-01T00:00:00Z"]), ALL - {"ann"}),
    (c("createdAt", "lt", "2026-03-01T01:00:00+01:00"), {"ann"}),
    (c("createdAt", "lte", "2026-03-01T01:00:00+01:00"), {"ann", "bob"}),
    (c("createdAt", "gt", "2026-09-01T12:30:00Z"), {"eve"}),
    (c("createdAt", "gte", "2026-09-01T12:30:00Z"), {"dee", "eve"}),
    (c("createdAt", "exists", True), ALL),
    # attributes: strings (case-sensitive, code point order)
    (c("attributes.city", "eq", "Paris"), {"ann"}),
    (c("attributes.city", "ne", "Paris"), ALL - {"ann"}),
    (c("attributes.city", "in", ["Paris", "paris"]), {"ann", "cy"}),
    (c("attributes.city", "nin", ["Paris", "paris"]), {"bob", "dee", "eve"}),
    (c("attributes.city", "contains", "ari"), {"ann", "cy"}),
    (c("attributes.city", "startsWith", "Z"), {"eve"}),
    (c("attributes.city", "lt", "Paris"), {"bob"}),
    (c("attributes.city", "lte", "Paris"), {"ann", "bob"}),
    (c("attributes.city", "gt", "Paris"), {"cy", "eve"}),
    (c("attributes.city", "gte", "Zürich"), {"cy", "eve"}),
    (c("attributes.city", "exists", True), {"ann", "bob", "cy", "eve"}),
    (c("attributes.city", "exists", False), {"dee"}),
    # attributes: numbers never equal strings ("31" is bob's)
    (c("attributes.age", "eq", 31), {"ann"}),
    (c("attributes.age", "eq", 31.0), {"ann"}),
    (c("attributes.age", "eq", "31"), {"bob"}),
    (c("attributes.age", "ne", 31), ALL - {"ann"}),
    (c("attributes.age", "in", [31, 45, "x"]), {"ann", "cy"}),
    (c("attributes.age", "in", ["31"]), {"bob"}),
    (c("attributes.age", "nin", [31, 45]), {"bob", "dee", "eve"}),
    (c("attributes.age", "gt", 30), {"ann", "cy"}),
    (c("attributes.age", "gte", 31), {"ann", "cy"}),
    (c("attributes.age", "lt", 31), {"eve"}),
    (c("attributes.age", "lte", 7.5), {"eve"}),
    (c("attributes.age", "gte", "3"), {"bob"}),
    (c("attributes.age", "contains", "1"), {"bob"}),
    (c("attributes.age", "lt", 10**14), {"ann", "cy", "eve"}),
    (c("attributes.age", "gt", -(10**14)), {"ann", "cy", "eve"}),
    (c("attributes.age", "eq", 10**14), set()),
    (c("attributes.age", "in", [10**14, 45]), {"cy"}),
    (c("attributes.score", "eq", 5), {"cy"}),
    (c("attributes.score", "gt", 5), {"ann"}),
    # attributes: booleans, nulls, arrays
    (c("attributes.vip", "eq", True), {"ann"}),
    (c("attributes.vip", "eq", False), {"bob"}),
    (c("attributes.vip", "ne", True), ALL - {"ann"}),
    (c("attributes.vip", "in", [True, False]), {"ann", "bob"}),
    (c("attributes.vip", "eq", 1), set()),
    (c("attributes.tier", "exists", True), {"ann", "bob"}),
    (c("attributes.tier", "exists", False), {"cy", "dee", "eve"}),
    (c("attributes.tier", "eq", "gold"), {"ann"}),
    (c("attributes.tags", "eq", "gold"), set()),
    (c("attributes.tags", "exists", True), {"bob"}),
    # attribute names and values are data: dots, quotes, SQL and LIKE characters
    (c("attributes.a.b", "eq", 1), {"dee"}),
    (c("attributes.it's", "eq", "yes"), {"eve"}),
    (c("attributes.city') OR 1=1 --", "exists", True), set()),
    (c("attributes.city", "eq", "Paris' OR '1'='1"), set()),
    (c("attributes.$.city", "exists", True), set()),
    (c("attributes.note", "contains", "%"), {"ann"}),
    (c("attributes.note", "contains", "_"), {"ann"}),
    (c("attributes.note", "contains", "0% off_"), {"ann"}),
    (c("attributes.note", "startsWith", "5_"), set()),
    (c("attributes.note", "startsWith", "5%"), set()),
    (c("attributes.note", "startsWith", "50%"), {"ann"}),
    (c("firstName", "contains", "%"), set()),
    (c("firstName", "startsWith", "_"), set()),
    # groups
    ({"all": [c("country", "eq", "FR"), c("attributes.city", "exists", True)]}, {"ann", "eve"}),
    ({"any": [c("country", "eq", "DE"), c("region", "eq", "US-FL")]}, {"bob", "cy"}),
    ({"not": c("country", "eq", "FR")}, {"bob", "cy"}),
    ({"not": c("firstName", "eq", "Ann")}, ALL - {"ann"}),
    ({"not": c("attributes.age", "gt", 30)}, {"bob", "dee", "eve"}),
    ({"not": {"not": c("region", "exists", True)}}, {"ann", "cy"}),
    (
        {
            "all": [
                c("country", "in", ["FR", "US"]),
                {
                    "any": [
                        c("attributes.tier", "eq", "gold"),
                        c("createdAt", "gte", "2026-06-01T00:00:00Z"),
                    ]
                },
                {"not": c("lastName", "eq", "O'Hara")},
            ]
        },
        {"ann", "dee", "eve"},
    ),
]


async def _matched(db, account_id: int, ids: dict[str, int], raw: dict[str, Any]) -> set[str]:
    node, errors = parse(raw)
    assert node is not None, errors
    names = {v: k for k, v in ids.items()}
    async with db.session(write=False) as s:
        where = to_sql(node, postgres=is_postgres(s))
        rows = await s.execute(select(Contact.id).where(Contact.account_id == account_id, where))
        return {names[i] for i in rows.scalars()}


async def test_every_op_on_every_field_type(db, account, cast):
    wrong = {}
    for raw, expected in CASES:
        got = await _matched(db, account.id, cast, raw)
        if got != expected:
            wrong[repr(raw)] = {"expected": sorted(expected), "got": sorted(got)}
    assert wrong == {}


async def test_the_api_counts_what_the_filter_matches(db, account, cast):
    created = await account.post("/segments", json={"name": "s", "filter": CASES[0][0]})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    wrong = {}
    for raw, expected in CASES:
        put = await account.put(f"/segments/{sid}", json={"name": "s", "filter": raw})
        assert put.status_code == 200, put.text
        count = await account.get(f"/segments/{sid}/count")
        assert count.status_code == 200, count.text
        if count.json() != {"contacts": len(expected)}:
            wrong[repr(raw)] = (len(expected), count.json())
    assert wrong == {}


async def test_nesting_eight_levels_runs(db, account, cast):
    raw: dict[str, Any] = c("country", "eq", "FR")  # level 8
    for _ in range(7):
        raw = {"not": raw}  # 7 nots: the outermost is level 1
    got = await _matched(db, account.id, cast, raw)
    assert got == {"bob", "cy"}  # an odd number of nots


async def test_other_accounts_contacts_are_never_counted(api, db, account, cast):
    other = await api.new_account("other")
    await account.post("/segments", json={"name": "all", "filter": c("phone", "exists", True)})
    mine = (await account.get("/segments")).json()["items"][0]["id"]
    assert (await account.get(f"/segments/{mine}/count")).json() == {"contacts": len(CAST)}
    created = await other.post(
        "/segments", json={"name": "all", "filter": c("phone", "exists", True)}
    )
    theirs = created.json()["id"]
    assert (await other.get(f"/segments/{theirs}/count")).json() == {"contacts": 0}


# --- random filters against a reference reading of the documented semantics --------------

_MISSING = object()
_COLUMNS = {
    "phone": "phone",
    "country": "country",
    "region": "region",
    "firstName": "first_name",
    "lastName": "last_name",
    "createdAt": "created_at",
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _compare(op: str, a: Any, b: Any) -> bool:
    return {"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]


def _reference(node: Any, person: dict[str, Any]) -> bool:
    """What the filter means for one contact of the cast (the docstring of filters.py)."""
    if isinstance(node, Group):
        results = [_reference(item, person) for item in node.items]
        return (
            {"all": all, "any": any}[node.kind](results) if node.kind != "not" else not results[0]
        )
    op, value = node.op, node.value
    if node.is_attribute:
        attributes = person.get("attributes", {})
        a = attributes.get(node.attribute, _MISSING)
        if op == "exists":
            return (a is not _MISSING and a is not None) == value

        def equal(v: Any) -> bool:
            return a is not _MISSING and _kind(a) == _kind(v) and a == v

        if op in ("eq", "ne"):
            return equal(value) == (op == "eq")
        if op in ("in", "nin"):
            return any(equal(v) for v in value) == (op == "in")
        if op == "contains":
            return isinstance(a, str) and value in a
        if op == "startsWith":
            return isinstance(a, str) and a.startswith(value)
        return a is not _MISSING and _kind(a) == _kind(value) and _compare(op, a, value)
    v = person.get(_COLUMNS[node.field])
    if op == "exists":
        return (v is not None) == value
    if op in ("eq", "ne"):
        return (v is not None and v == value) == (op == "eq")
    if op in ("in", "nin"):
        return (v is not None and v in value) == (op == "in")
    if op == "contains":
        return v is not None and value in v
    if op == "startsWith":
        return v is not None and v.startswith(value)
    return v is not None and _compare(op, v, value)


_VALUES: dict[str, list[Any]] = {
    "phone": ["+33612345001", "+1", "+336", "345", "+4"],
    "country": ["FR", "DE", "US", "GB", "E"],
    "region": ["US-FL", "FR-75C", "US-", "-7", "A"],
    "firstName": ["Ann", "Bob", "Cy", "Évé", "n", "B", "ann"],
    "lastName": ["Lee", "O'Hara", "'", "Le"],
    "createdAt": [
        "2026-01-01T00:00:00Z",
        "2026-03-01T01:00:00+01:00",
        "2026-06-01T00:00:00Z",
        "2026-09-01T12:30:00Z",
        "2026-12-31T00:00:00-05:00",
    ],
    "attributes.city": ["Paris", "paris", "Berlin", "Zürich", "ari", "Z"],
    "attributes.age": [31, "31", 45, 7.5, 30, "3", 0],
    "attributes.vip": [True, False, 1, "true"],
    "attributes.score": [5, 5.5, 5.0, "5"],
    "attributes.tier": ["gold", "silver", "none"],
    "attributes.note": ["50%", "%", "_", "5 off", "5_", "off"],
    "attributes.missing": ["x", 1],
}
_STRING_OPS = ("contains", "startsWith")


def _random_condition(rng: Any) -> dict[str, Any]:
    field = rng.choice(sorted(_VALUES))
    ops = [o for o in OPS if not (field == "createdAt" and o in _STRING_OPS)]
    op = rng.choice(ops)
    values = _VALUES[field]
    if op == "exists":
        return c(field, op, rng.choice([True, False]))
    if op in ("in", "nin"):
        picked = rng.sample(values, rng.randint(1, min(3, len(values))))
        if not field.startswith("attributes."):
            return c(field, op, picked)
        return c(field, op, [v for v in picked if not isinstance(v, bool)] or ["x"])
    value = rng.choice(values)
    if op in _STRING_OPS or not field.startswith("attributes."):
        value = value if isinstance(value, str) and value else "x"
    elif op in ("lt", "lte", "gt", "gte") and isinstance(value, bool):
        value = 1
    return c(field, op, value)


def _random_filter(rng: Any, depth: int = 1) -> dict[str, Any]:
    if depth >= 4 or rng.random() < 0.4:
        return _random_condition(rng)
    kind = rng.choice(["all", "any", "not"])
    if kind == "not":
        return {"not": _random_filter(rng, depth + 1)}
    return {kind: [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}


async def test_random_filters_mean_what_the_documentation_says(db, account, cast):
    rng = random.Random(20261201)
    names = {v: k for k, v in cast.items()}
    wrong = {}
    async with db.session(write=False) as s:
        postgres = is_postgres(s)
        for _ in range(300):
            raw = _random_filter(rng)
            node, errors = parse(raw)
            assert node is not None, (raw, errors)
            rows = await s.execute(
                select(Contact.id).where(
                    Contact.account_id == account.id, to_sql(node, postgres=postgres)
                )
            )
            got = {names[i] for i in rows.scalars()}
            expected = {name for name, person in CAST.items() if _reference(node, person)}
            if got != expected:
                wrong[repr(raw)] = {"expected": sorted(expected), "got": sorted(got)}
    assert wrong == {}
