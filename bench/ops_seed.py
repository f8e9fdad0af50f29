"""Seeding for the operations benchmarks (bench/metrics.py, bench/retention.py): an account,
campaigns in a given status, and their message rows written by one INSERT ... SELECT each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, text

from clarion.accounts import ledger
from clarion.campaigns.models import Campaign
from clarion.db.base import UTCDateTime, utcnow
from clarion.db.session import Database
from clarion.pricing.models import Rate

_MESSAGES = """
INSERT INTO message (campaign_id, account_id, contact_id, phone, country, channel, status,
                     units, price, attempts, next_attempt_at, provider, provider_message_id,
                     sent_at, created_at, updated_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :per)
SELECT :cid, :aid, i, '+3361' || CAST(i AS TEXT), 'FR', 'sms', :status, 1, :price, :attempts,
       :now, CAST(:provider AS TEXT), CAST(:prefix AS TEXT) || CAST(i AS TEXT), :sent_at,
       :now, :now
FROM n
"""

_RECEIPTS = """
INSERT INTO receipt_event (provider, provider_message_id, status, received_at, message_id,
                           refund)
SELECT provider, provider_message_id, 'delivered', :now, id, false
FROM message WHERE campaign_id = :cid
"""


# One tracked link per message, every tenth clicked once (its counter and one click row).
_LINKS = """
INSERT INTO link (code, account_id, campaign_id, message_id, position, url, clicks)
SELECT CAST(id AS TEXT), account_id, campaign_id, id, 0, 'https://shop.example/',
       CASE WHEN id % 10 = 0 THEN 1 ELSE 0 END
FROM message WHERE campaign_id = :cid
"""

_CLICKS = """
INSERT INTO click (code, campaign_id, at, user_agent)
SELECT code, campaign_id, :now, 'bench' FROM link WHERE campaign_id = :cid AND clicks > 0
"""


async def account(db: Database, credits: int = 0) -> int:
    """An account holding `credits` units, and an SMS rate of 700 units for every country."""
    now = utcnow()
    async with db.transaction() as s:
        aid = (
            await s.execute(
                text(
                    "INSERT INTO account (name, balance, reserved, created_at, updated_at) "
                    "VALUES ('bench', 0, 0, :now, :now) RETURNING id"
                ).bindparams(bindparam("now", type_=UTCDateTime())),
                {"now": now},
            )
        ).scalar_one()
        await s.execute(
            insert(Rate), [{"channel": "sms", "country": "*", "category": "", "price": 700}]
        )
        if credits:
            await ledger.topup(s, aid, credits, note="bench")
    return int(aid)


async def campaign(
    db: Database,
    aid: int,
    per: int,
    *,
    status: str,
    completed_at: datetime | None = None,
    receipts: bool = False,
    links: bool = False,
) -> int:
    """A campaign with `per` messages: queued and due when sending, delivered (with one raw
    receipt each when `receipts`; one tracked link each, a tenth of them clicked once, when
    `links`) when completed."""
    now = utcnow()
    done = status == "completed"
    async with db.transaction() as s:
        c = Campaign(
            account_id=aid,
            name="bench",
            channel="sms",
            status=status,
            message={"text": "Hi"},
            list_ids=[],
            exclude_list_ids=[],
            sender="Clarion",
            confirmed_at=now,
            started_at=now,
            completed_at=completed_at,
            materialized_at=now,
            recipients=per,
            queued=0 if done else per,
            delivered=per if done else 0,
            spent=per * 700 if done else 0,
        )
        s.add(c)
        await s.flush()
        cid = c.id
        stmt = text(_MESSAGES).bindparams(
            bindparam("now", type_=UTCDateTime()), bindparam("sent_at", type_=UTCDateTime())
        )
        await s.execute(
            stmt,
            {
                "per": per,
                "cid": cid,
                "aid": aid,
                "status": "delivered" if done else "queued",
                "price": 700 if done else 0,
                "attempts": 1 if done else 0,
                "provider": "bench" if done else None,
                "prefix": f"{cid}-" if done else None,
                "sent_at": now if done else None,
                "now": now,
            },
        )
        if receipts:
            await s.execute(
                text(_RECEIPTS).bindparams(bindparam("now", type_=UTCDateTime())),
                {"cid": cid, "now": now},
            )
        if links:
            await s.execute(text(_LINKS), {"cid": cid})
            await s.execute(
                text(_CLICKS).bindparams(bindparam("now", type_=UTCDateTime())),
                {"cid": cid, "now": now},
            )
    return int(cid)
