"""Benchmark: calculateGoal over a large audience, and GET /campaigns/stats.

    python bench/estimate.py                 # issue sizes, SQLite and PostgreSQL
    python bench/estimate.py --quick         # small smoke run
    python bench/estimate.py --backend sqlite --recipients 200000
    python bench/estimate.py --consent 0.5    # requireConsent, half the contacts granted
    python bench/estimate.py --backend postgresql --skip-stats \
        --filter broad --cap 2/24 --consent 0.5 --segment-count
        # a 3-condition filter, a frequency cap (2 marketing messages in 24 h; --capped of
        # the contacts reached it) and requireConsent; GET /segments/{id}/count of the filter

calculateGoal is timed by calling the service function (clarion.campaigns.service.
calculate_goal: validation, fingerprint, audience GROUP BY, personalized streaming, storing
the estimate) in its own transaction. The baseline is a bare
`SELECT country, count(*) FROM contact WHERE account_id = ? GROUP BY country` over the same
audience, measured in the same run. GET /campaigns/stats is timed through HTTP (the real
ASGI app, in process) on PostgreSQL, and so is GET /segments/{id}/count (--segment-count,
both backends: a saved segment of the --filter). Every PostgreSQL run uses its own fresh
database, created and dropped here.

With --filter the contacts carry attributes (`tier`: gold/silver/bronze/none, `age`: 0-79,
`city`) and the campaigns target the lists narrowed by a 3-condition filter: "broad"
(country in 18 of the 20, tier not none, age >= 18: about half the contacts) or "narrow"
(country FR, tier gold, age >= 30: under 1 %). With --cap M/H the account has that
frequency cap and an earlier marketing campaign sent --capped of the contacts M messages
an hour ago (and as many others one message, under the cap): message rows written in SQL
as the engine leaves them, then the statistics the product refreshes after bulk writes.
"""

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import bindparam, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clarion.accounts.service import create_account
from clarion.app import create_app
from clarion.campaigns import service
from clarion.campaigns.models import Campaign
from clarion.compliance.schemas import ComplianceIn, FrequencyCapIn
from clarion.compliance.service import update_settings
from clarion.config import Settings
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.migrate import upgrade
from clarion.db.plans import analyze_if_changed
from clarion.db.session import Database
from clarion.segments.models import Segment

COUNTRIES = [
    "FR", "DE", "US", "GB", "ES", "IT", "NL", "BE", "PT", "PL",
    "SE", "NO", "DK", "FI", "IE", "AT", "CH", "CZ", "GR", "RO",
]  # fmt: skip
PG_ADMIN = os.environ.get("CLARION_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PLAIN = "Black Friday: 20% off everything today only. Reply STOP to opt out"
PERSONAL = "Hi {{firstName}} {{lastName}}, Black Friday: 20% off today only. Reply STOP to opt out"
FILTERS: dict[str, dict[str, Any]] = {
    "broad": {
        "all": [
            {"field": "country", "op": "in", "value": COUNTRIES[:18]},
            {"field": "attributes.tier", "op": "ne", "value": "none"},
            {"field": "attributes.age", "op": "gte", "value": 18},
        ]
    },
    "narrow": {
        "all": [
            {"field": "country", "op": "eq", "value": "FR"},
            {"field": "attributes.tier", "op": "eq", "value": "gold"},
            {"field": "attributes.age", "op": "gte", "value": 30},
        ]
    },
}
_ATTRIBUTES_PG = (
    "jsonb_build_object('tier', (ARRAY['gold', 'silver', 'bronze', 'none'])[1 + (x / 7) % 4], "
    "'age', x % 80, 'city', 'City' || (x % 50))"
)
_ATTRIBUTES_SQLITE = (
    "json_object('tier', CASE (x / 7) % 4 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' "
    "WHEN 2 THEN 'bronze' ELSE 'none' END, 'age', x % 80, 'city', 'City' || (x % 50))"
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def generate_audience(
    db: Database,
    n: int,
    overlap: float,
    optout: float,
    consent: float | None = None,
    attributes: bool = False,
) -> tuple[int, str]:
    """One account (its id and API key); n contacts in 20 countries (with `attributes`:
    tier, age and city); 3 lists splitting them, with `overlap` of the contacts also in a
    second list; `optout` of them opted out of SMS; with `consent`, the account requires
    consent and that share of the contacts granted it. All set-based SQL."""
    async with db.transaction() as s:
        account, key = await create_account(s, "bench", 0)
        account_id = account.id
    every_overlap = max(1, round(1 / overlap)) if overlap else 0
    every_optout = max(1, round(1 / optout)) if optout else 0
    country_list = ",".join(f"'{c}'" for c in COUNTRIES)
    async with db.writer.begin() as conn:
        for i in range(3):
            await conn.execute(
                text(
                    "INSERT INTO contact_list (account_id, name, created_at, updated_at) "
                    "VALUES (:a, :n, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"a": account_id, "n": f"list {i}"},
            )
        list_ids = [
            r[0]
            for r in await conn.execute(
                text("SELECT id FROM contact_list WHERE account_id = :a ORDER BY id"),
                {"a": account_id},
            )
        ]
        if db.is_sqlite:
            countries = "".join(COUNTRIES)
            await conn.execute(
                text(
                    "WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq "
                    "WHERE x < :n) "
                    "INSERT INTO contact (account_id, phone, country, first_name, last_name, "
                    "attributes, created_at, updated_at) "
                    "SELECT :a, '+1' || (10000000000 + x), substr(:c, (x % 20) * 2 + 1, 2), "
                    f"'Ann' || (x % 50), 'Smith' || (x % 37), "
                    f"{_ATTRIBUTES_SQLITE if attributes else repr('{}')}, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM seq"
                ),
                {"n": n, "a": account_id, "c": countries},
            )
        else:
            await conn.execute(
                text(
                    "INSERT INTO contact (account_id, phone, country, first_name, last_name, "
                    "attributes, created_at, updated_at) "
                    f"SELECT :a, '+1' || (10000000000 + x), (ARRAY[{country_list}])[x % 20 + 1], "
                    "'Ann' || (x % 50), 'Smith' || (x % 37), "
                    f"{_ATTRIBUTES_PG if attributes else repr('{}') + '::jsonb'}, now(), now() "
                    "FROM generate_series(1, :n) AS x"
                ),
                {"n": n, "a": account_id},
            )
        first, last = (
            await conn.execute(
                text("SELECT min(id), max(id) FROM contact WHERE account_id = :a"),
                {"a": account_id},
            )
        ).one()
        for k, list_id in enumerate(list_ids):
            prev = list_ids[(k - 1) % 3]
            await conn.execute(
                text(
                    "INSERT INTO list_member (list_id, contact_id, created_at) "
                    "SELECT :l, id, CURRENT_TIMESTAMP FROM contact "
                    "WHERE account_id = :a AND id % 3 = :k"
                ),
                {"l": list_id, "a": account_id, "k": k},
            )
            if every_overlap:
                # contacts of the previous list that are also in this one
                await conn.execute(
                    text(
                        "INSERT INTO list_member (list_id, contact_id, created_at) "
                        "SELECT :l, id, CURRENT_TIMESTAMP FROM contact "
                        "WHERE account_id = :a AND id % 3 = :pk AND (id / 3) % :e = 0"
                    ),
                    {"l": list_id, "a": account_id, "pk": (k - 1) % 3, "e": every_overlap},
                )
            assert prev
        if every_optout:
            await conn.execute(
                text(
                    "INSERT INTO contact_opt_out (contact_id, channel, source, created_at) "
                    "SELECT id, 'sms', 'bench', CURRENT_TIMESTAMP FROM contact "
                    "WHERE account_id = :a AND id % :e = 7 % :e"
                ),
                {"a": account_id, "e": every_optout},
            )
        await conn.execute(text("DELETE FROM rate"))
        for i, country in enumerate(COUNTRIES):
            await conn.execute(
                text(
                    "INSERT INTO rate (channel, country, category, price, created_at) "
                    "VALUES ('sms', :c, '', :p, CURRENT_TIMESTAMP)"
                ),
                {"c": country, "p": 300 + 17 * i},
            )
        assert first and last
    if consent is not None:
        await require_consent(db, account_id, consent)
    # What the product does after an import this size (no more: no VACUUM, no CHECKPOINT).
    await analyze_if_changed(db, {"contact": n, "list_member": n})
    return account_id, key


async def seed_cap(db: Database, account_id: int, cap: tuple[int, int], share: float) -> int:
    """The account caps marketing messages at cap = (messages, hours); as many earlier
    marketing campaigns (a message per contact each) sent `share` of its contacts one message
    each an hour ago (they reached the cap), and the first of them sent as many other
    contacts one message (under the cap, unless it is 1). Returns the message rows written."""
    messages, hours = cap
    every = max(2, round(1 / share)) if share else 0
    async with db.transaction() as s:
        earlier = [
            Campaign(
                account_id=account_id,
                name=f"earlier {i}",
                channel="sms",
                status="completed",
                message={"text": PLAIN},
                list_ids=[],
                exclude_list_ids=[],
            )
            for i in range(messages)
        ]
        s.add_all(earlier)
        await s.flush()
        campaign_ids = [c.id for c in earlier]
        await update_settings(
            s,
            account_id,
            ComplianceIn(frequency_cap=FrequencyCapIn(messages=messages, period_hours=hours)),
        )
    written = 0
    if every:
        sent = utcnow() - timedelta(hours=1)
        insert = text(
            "INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, "
            "status, units, price, attempts, next_attempt_at, sent_at, created_at, updated_at) "
            "SELECT :c, :a, id, phone, country, 'sms', 'delivered', 1, 700, 1, :t, :t, :t, :t "
            "FROM contact WHERE account_id = :a AND id % :e = :r"
        ).bindparams(bindparam("t", type_=UTCDateTime()))
        sends = [(c, 0) for c in campaign_ids] + [(campaign_ids[0], 1)]
        async with db.writer.begin() as conn:
            for campaign_id, remainder in sends:
                params = {"a": account_id, "t": sent, "e": every}
                params.update(c=campaign_id, r=remainder)
                written += (await conn.execute(insert, params)).rowcount
    await analyze_if_changed(db, {"message": written})
    return written


async def require_consent(db: Database, account_id: int, share: float) -> None:
    """The account requires consent; `share` of its contacts granted it for SMS, some of the
    others denied it (the rest were never asked)."""
    every = max(1, round(1 / share)) if share else 0
    async with db.writer.begin() as conn:
        if every:
            await conn.execute(
                text(
                    "INSERT INTO contact_consent (contact_id, channel, status, at, source) "
                    "SELECT id, 'sms', CASE WHEN id % :e = 0 THEN 'granted' ELSE 'denied' END, "
                    "CURRENT_TIMESTAMP, 'import' FROM contact "
                    "WHERE account_id = :a AND (id % :e = 0 OR id % 7 = 1)"
                ),
                {"a": account_id, "e": every},
            )
    async with db.transaction() as s:
        await update_settings(s, account_id, ComplianceIn(require_consent=True))


async def timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - start)
    return times, result


def fmt(times: list[float]) -> str:
    return f"best {min(times) * 1000:8.1f} ms  median {statistics.median(times) * 1000:8.1f} ms"


async def bench_estimate(
    db: Database, settings: Settings, args: argparse.Namespace, label: str
) -> None:
    t0 = time.perf_counter()
    account_id, key = await generate_audience(
        db, args.recipients, args.overlap, args.optout, args.consent, attributes=bool(args.filter)
    )
    print(f"[{label}] generated {args.recipients:,} contacts in {time.perf_counter() - t0:.1f} s")
    audience_filter = FILTERS[args.filter] if args.filter else None
    if args.cap:
        t0 = time.perf_counter()
        written = await seed_cap(db, account_id, args.cap, args.capped)
        print(
            f"[{label}] cap {args.cap[0]} per {args.cap[1]} h: {written:,} earlier messages "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    async with db.transaction() as s:
        list_ids = list(
            (
                await s.execute(
                    text("SELECT id FROM contact_list WHERE account_id = :a"), {"a": account_id}
                )
            ).scalars()
        )
        ids = {}
        for name, body in (("plain", PLAIN), ("personalized", PERSONAL)):
            c = Campaign(
                account_id=account_id,
                name=name,
                channel="sms",
                status="draft",
                message={"text": body},
                list_ids=list_ids,
                exclude_list_ids=[],
                audience_filter=audience_filter,
            )
            s.add(c)
            await s.flush()
            ids[name] = c.id
        segment_id = None
        if audience_filter is not None:
            segment = Segment(account_id=account_id, name=args.filter, filter=audience_filter)
            s.add(segment)
            await s.flush()
            segment_id = segment.id

    async def baseline() -> Any:
        async with db.transaction(write=False) as s:
            return (
                await s.execute(
                    text(
                        "SELECT country, count(*) FROM contact WHERE account_id = :a "
                        "GROUP BY country"
                    ),
                    {"a": account_id},
                )
            ).all()

    base_times, rows = await timed(baseline, args.repeat)
    print(f"[{label}] baseline GROUP BY country ({len(rows)} rows)      {fmt(base_times)}")
    base = min(base_times)
    # The issues' targets: 1.5 s for the lists alone, 2 s with a filter, a cap and consent.
    compliance = bool(args.filter and args.cap and args.consent is not None)
    for name, limit in (("plain", 2.0 if compliance else 1.5), ("personalized", 5.0)):

        async def run(campaign_id: int = ids[name]) -> Any:
            async with db.transaction() as s:
                return await service.calculate_goal(s, account_id, campaign_id)

        before = rss_mb()
        times, estimate = await timed(run, args.repeat)
        print(
            f"[{label}] calculateGoal {name:<13} {fmt(times)}  "
            f"x{min(times) / base:5.1f} baseline  target < {limit} s: "
            f"{'OK' if min(times) < limit else 'MISSED'}  "
            f"(maxrss {before:.0f} -> {rss_mb():.0f} MB)"
        )
        print(
            f"[{label}]   recipients {estimate['recipients']:,} units {estimate['units']:,} "
            f"price {estimate['price']} excluded {estimate['excluded']} "
            f"encoding {estimate['encoding']} maxParts {estimate['maxParts']}"
        )
    if args.segment_count and segment_id is not None:
        await bench_segment_count(db, settings, key, segment_id, base, args, label)


async def bench_segment_count(
    db: Database,
    settings: Settings,
    key: str,
    segment_id: int,
    base: float,
    args: argparse.Namespace,
    label: str,
) -> None:
    """GET /segments/{id}/count through HTTP (the real ASGI app, in process)."""
    app = create_app(settings, db=db)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):

        async def count() -> Any:
            r = await client.get(f"/segments/{segment_id}/count")
            assert r.status_code == 200, r.text
            return r.json()["contacts"]

        await count()  # warm the key cache and the connection pool
        times, matched = await timed(count, max(args.repeat, 5))
    print(
        f"[{label}] GET /segments/id/count {args.filter} ({matched:,} match) {fmt(times)}  "
        f"x{min(times) / base:5.1f} baseline  target < 500 ms: "
        f"{'OK' if min(times) < 0.5 else 'MISSED'}"
    )


async def bench_stats(db: Database, settings: Settings, args: argparse.Namespace) -> None:
    async with db.transaction() as s:
        account, key = await create_account(s, "stats", 0)
        account_id = account.id
    t0 = time.perf_counter()
    async with db.writer.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO campaign (account_id, name, channel, status, message, list_ids, "
                "exclude_list_ids, reserved, spent, recipients, queued, sending, sent, "
                "delivered, read, failed, skipped, expired, created_at, updated_at, started_at) "
                "SELECT :a, 'c' || g, (ARRAY['sms','rcs','whatsapp'])[g % 3 + 1], 'completed', "
                "'{}'::jsonb, '[]'::jsonb, '[]'::jsonb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, now(), "
                "now(), timestamptz '2026-10-01' + (g % 60) * interval '1 day' "
                "FROM generate_series(1, :n) AS g"
            ),
            {"a": account_id, "n": args.campaigns},
        )
        await conn.execute(
            text(
                "INSERT INTO message (campaign_id, account_id, contact_id, phone, country, "
                "channel, status, units, price, attempts, next_attempt_at, created_at, "
                "updated_at) "
                "SELECT c.id, :a, g, '+1' || (10000000000 + g), 'US', c.channel, "
                "(ARRAY['delivered','delivered','delivered','read','sent','failed'])"
                "[g % 6 + 1], 1, 700, 1, now(), now(), now() "
                "FROM generate_series(1, :m) AS g "
                "JOIN campaign c ON c.account_id = :a "
                "AND c.id = (SELECT min(id) FROM campaign WHERE account_id = :a) + g % :n"
            ),
            {"a": account_id, "m": args.messages, "n": args.campaigns},
        )
        # the counters, as the engine keeps them, from the messages (set-based)
        await conn.execute(
            text(
                "UPDATE campaign c SET recipients = m.total, sent = m.sent, "
                "delivered = m.delivered, read = m.read, failed = m.failed, spent = m.spent "
                "FROM (SELECT campaign_id, count(*) AS total, "
                "count(*) FILTER (WHERE status = 'sent') AS sent, "
                "count(*) FILTER (WHERE status = 'delivered') AS delivered, "
                "count(*) FILTER (WHERE status = 'read') AS read, "
                "count(*) FILTER (WHERE status = 'failed') AS failed, "
                "sum(price) FILTER (WHERE status <> 'failed') AS spent "
                "FROM message WHERE account_id = :a GROUP BY campaign_id) m "
                "WHERE m.campaign_id = c.id"
            ),
            {"a": account_id},
        )
    print(
        f"[postgresql] generated {args.campaigns:,} campaigns, {args.messages:,} messages in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    app = create_app(settings, db=db)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        for query in ("", "?from=2026-10-01&to=2026-10-31", "?channel=sms"):

            async def get(q: str = query) -> Any:
                r = await client.get(f"/campaigns/stats{q}")
                assert r.status_code == 200, r.text
                return r.json()

            await get()  # warm the key cache and the connection pool
            times, body = await timed(get, max(args.repeat, 5))
            print(
                f"[postgresql] GET /campaigns/stats{query:<32} {fmt(times)}  "
                f"target < 200 ms: {'OK' if min(times) < 0.2 else 'MISSED'}  "
                f"(campaigns {body['campaigns']}, recipients {body['recipients']:,})"
            )


async def on_sqlite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        settings = Settings(database_url=url, admin_token="bench", sender_enabled=False)
        try:
            await bench_estimate(db, settings, args, "sqlite")
        finally:
            await db.dispose()


async def on_postgresql(args: argparse.Namespace) -> None:
    name = f"clarion_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        settings = Settings(database_url=url, admin_token="bench", sender_enabled=False)
        try:
            await bench_estimate(db, settings, args, "postgresql")
            if not args.skip_stats:
                await bench_stats(db, settings, args)
        finally:
            await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=float, default=0.05)
    parser.add_argument("--optout", type=float, default=0.01)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument(
        "--consent",
        type=float,
        default=None,
        help="require consent, granted by this share of the contacts (e.g. 0.5)",
    )
    parser.add_argument(
        "--filter", choices=sorted(FILTERS), default=None, help="narrow the lists by a filter"
    )
    parser.add_argument(
        "--cap",
        type=lambda v: tuple(int(x) for x in v.split("/")),
        default=None,
        help="a frequency cap, MESSAGES/HOURS (e.g. 2/24)",
    )
    parser.add_argument(
        "--capped", type=float, default=0.1, help="with --cap: share of contacts at the cap"
    )
    parser.add_argument(
        "--segment-count",
        action="store_true",
        help="with --filter: time GET /segments/{id}/count of a segment of that filter",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.recipients, args.campaigns, args.messages, args.repeat = 20_000, 50, 50_000, 2
    print(f"load average: {os.getloadavg()}")
    if args.backend in ("sqlite", "both"):
        asyncio.run(on_sqlite(args))
    if args.backend in ("postgresql", "both"):
        asyncio.run(on_postgresql(args))


if __name__ == "__main__":
    main()
