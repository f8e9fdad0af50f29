"""The product keeps what it bulk-writes analyzed (PostgreSQL): an import or a bulk add that
changed a good share of the contacts or memberships leaves fresh statistics behind it; a
small change to a large table does not pay for an ANALYZE."""

from sqlalchemy import text

from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database
from tests.audience.conftest import import_csv, new_list
from tests.conftest import AccountClient, Api


async def _analyzed(db: Database) -> dict[str, int]:
    """How many times each table was analyzed (PostgreSQL's counters)."""
    async with db.session(write=False) as s:
        rows = await s.execute(
            text(
                "SELECT relname, analyze_count FROM pg_stat_user_tables "
                "WHERE relname IN ('contact', 'list_member')"
            )
        )
        return {str(name): int(count) for name, count in rows}


def _phones(n: int, start: int = 0) -> list[str]:
    return [f"+3361{i:07d}" for i in range(start, start + n)]


async def test_an_import_leaves_its_tables_analyzed(api: Api, account: AccountClient) -> None:
    if api.db.is_sqlite:
        assert await analyze_if_changed(api.db, {"contact": 10**6}) == []
        return
    before = await _analyzed(api.db)
    list_id = await new_list(account)
    csv = "phone\n" + "\n".join(_phones(500)) + "\n"
    assert (await import_csv(account, list_id, csv.encode()))["status"] == "done"
    after = await _analyzed(api.db)
    assert after["contact"] == before["contact"] + 1
    assert after["list_member"] == before["list_member"] + 1


async def test_bulk_adds_analyze_once_they_change_a_good_share(
    api: Api, account: AccountClient
) -> None:
    if api.db.is_sqlite:
        return
    list_id = await new_list(account)

    async def add(phones: list[str]) -> None:
        body = {"contacts": [{"phone": p} for p in phones]}
        r = await account.post(f"/lists/{list_id}/contacts", json=body)
        assert r.status_code == 200, r.text

    before = await _analyzed(api.db)
    await add(_phones(1_000))  # new tables: analyzed once the answer is sent
    first = await _analyzed(api.db)
    assert first == {t: n + 1 for t, n in before.items()}
    await add(_phones(20, start=1_000))  # 2% more: the statistics still hold
    assert await _analyzed(api.db) == first
    await add(_phones(200, start=2_000))  # 20% more
    assert await _analyzed(api.db) == {t: n + 1 for t, n in first.items()}
