"""The status machine: unit rules, and a property test of ingestion against it."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion.db.session import Database
from clarion.delivery.service import ingest_receipts
from clarion.messages.states import RANK, fold, next_status
from clarion.providers.base import Receipt
from tests.delivery.conftest import assert_partition, message_statuses, seed_campaign


class TestMachine:
    def test_never_backwards(self) -> None:
        for current in ("sent", "delivered", "read"):
            for receipt in ("sent", "delivered", "read"):
                new = next_status(current, receipt)
                assert new is None or RANK[new] > RANK[current]

    def test_final_statuses_stay(self) -> None:
        for current in ("failed", "skipped"):
            for receipt in ("sent", "delivered", "read", "failed"):
                assert next_status(current, receipt) is None

    def test_failed_only_from_sent(self) -> None:
        assert next_status("sent", "failed") == "failed"
        assert next_status("delivered", "failed") is None
        assert next_status("read", "failed") is None

    def test_fold(self) -> None:
        assert fold("sent", ["read", "delivered"]) == "read"
        assert fold("sent", ["delivered", "failed", "read"]) == "read"
        assert fold("sent", ["failed", "delivered"]) == "failed"


receipts_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["sent", "delivered", "read", "failed"])),
    max_size=24,
)


class TestIngestionFollowsTheMachine:
    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(receipts=receipts_strategy, cuts=st.lists(st.integers(0, 24), max_size=4))
    async def test_any_order_any_batching(
        self, db: Database, receipts: list[tuple[int, str]], cuts: list[int]
    ) -> None:
        s = await seed_campaign(db, count=4, test_sends=0)
        bounds = sorted({0, len(receipts), *(c for c in cuts if c < len(receipts))})
        for start, end in itertools.pairwise(bounds):
            async with db.transaction() as session:
                await ingest_receipts(
                    session,
                    [Receipt("simulator", s.pmid(i), status) for i, status in receipts[start:end]],
                )
        statuses = await message_statuses(db, s.campaign_id)
        for i, message_id in enumerate(s.message_ids):
            expected = fold("sent", [status for j, status in receipts if j == i])
            assert statuses[message_id] == expected
        await assert_partition(db, s.campaign_id)
