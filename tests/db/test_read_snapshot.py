"""A read session sees one snapshot of the database, however many statements it sends.

Readers add what is appended but not folded yet to a row, with two statements (a campaign's
row and its tallies; an account and its reservation slices). A fold that commits between
them must not be half seen: the row from before it and the tallies from after would miss the
folded change, and a live counter would go backwards.
"""

from sqlalchemy import func, select

from clarion.accounts.models import Account
from clarion.campaigns import counters
from clarion.campaigns.models import Campaign
from clarion.db.session import Database
from clarion.messages import tally
from tests.campaigns.conftest import create, sms_body
from tests.conftest import AccountClient


async def test_statements_of_a_read_session_share_one_snapshot(db: Database) -> None:
    async with db.session(write=False) as reader, reader.begin():
        before = (await reader.execute(select(func.count()).select_from(Account))).scalar_one()
        async with db.transaction() as writer:
            writer.add(Account(name="meanwhile", balance=0, reserved=0))
        after = (await reader.execute(select(func.count()).select_from(Account))).scalar_one()
    assert after == before
    async with db.session(write=False) as reader:
        assert (await reader.execute(select(func.count()).select_from(Account))).scalar_one() == (
            before + 1
        )


async def test_a_fold_between_a_readers_statements_is_not_half_seen(
    db: Database, account: AccountClient
) -> None:
    cid = (await create(account, sms_body([])))["id"]
    async with db.transaction() as s:
        await tally.move(s, cid, {"queued": 5}, recipients=5)
    async with db.session(write=False) as reader, reader.begin():
        campaign = await reader.get(Campaign, cid)
        assert campaign is not None
        async with db.transaction() as s:  # the scheduler folds meanwhile
            assert await counters.fold(s, cid)
        unfolded = (await counters.pending(reader, [cid])).get(cid)
        live = counters.live(campaign, unfolded)
    assert (live["queued"], live["recipients"]) == (5, 5)
