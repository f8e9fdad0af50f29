"""A/B materialization benchmark: queuing an A/B campaign's audience (the test share ranked
by the seeded hash in one statement, then the remainder in chunks, leaving the test out)
against queuing a plain campaign of the same audience, on SQLite and PostgreSQL.

Per backend: the plain campaign's materialization, the A/B test share, the A/B remainder,
and the ratio of the A/B total to the plain one (baseline measured in the same run).

Usage:
    python bench/abtest.py                 # 200,000 recipients, test share 20%
    python bench/abtest.py --quick         # 20,000 recipients
    python bench/abtest.py --recipients 1000000 --backends pg
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).parent))
from dispatch import PRICE, fresh_backend, new_campaign, seed

from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.sending import abtest
from clarion.sending.materialize import materialize

CHUNK = 50_000


async def _make_ab(db: Database, aid: int, lid: int, n: int, share: float) -> int:
    cid = await new_campaign(db, aid, lid, n)
    async with db.transaction() as s:
        await s.execute(
            update(Campaign)
            .where(Campaign.id == cid)
            .values(
                message={},
                variants=[
                    {"name": "A", "message": {"text": "Hi {{firstName}}"}},
                    {"name": "B", "message": {"text": "Hello {{firstName}}"}},
                ],
                ab_test={"testShare": share, "metric": "delivered", "decideAfterMinutes": 60},
                ab_seed=123_456_789_012_345,
            )
        )
    return cid


async def run_backend(name: str, n: int, share: float) -> None:
    backend = await fresh_backend(name)
    db = Database(backend.url)
    try:
        aid, lid = await seed(db, n, credits=4 * n * PRICE)
        plain = await new_campaign(db, aid, lid, n)
        t0 = time.perf_counter()
        made = await materialize(db, plain, CHUNK)
        t_plain = time.perf_counter() - t0

        ab = await _make_ab(db, aid, lid, n, share)
        t0 = time.perf_counter()
        test = await abtest.materialize_tests(db, CHUNK)
        t_test = time.perf_counter() - t0
        async with db.transaction() as s:
            await s.execute(
                update(Campaign)
                .where(Campaign.id == ab)
                .values(ab_winner="A", ab_decided_at=utcnow())
            )
        t0 = time.perf_counter()
        rest = await materialize(db, ab, CHUNK)
        t_rest = time.perf_counter() - t0
        assert made == n and test + rest == n, (made, test, rest)
        total = t_test + t_rest
        print(
            f"{backend.name:10} {n:>9,} recipients  plain {t_plain:6.2f} s   "
            f"A/B test share {test:>8,} {t_test:6.2f} s + remainder {rest:>8,} {t_rest:6.2f} s"
            f" = {total:6.2f} s   ratio {total / t_plain:4.2f}x"
        )
    finally:
        await db.dispose()
        await backend.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--backends", default="sqlite,pg")
    parser.add_argument("--quick", action="store_true", help="20,000 recipients")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.recipients
    for name in args.backends.split(","):
        await run_backend(name.strip(), n, args.share)


if __name__ == "__main__":
    asyncio.run(main())
