"""`clarion demo`: a whole campaign on the built-in simulator, in this process.

Creates an account, a list of simulator numbers (one of them is undeliverable, one cannot
be reached at all), a campaign, reserves its price as confirm does, and runs the engine until
every recipient has a final receipt, printing progress.
"""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from sqlalchemy import insert, select

from clarion.accounts import ledger
from clarion.accounts.service import create_account
from clarion.audience.models import Contact, ContactList, ListMember
from clarion.campaigns.models import Campaign
from clarion.config import get_settings
from clarion.db.base import utcnow
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.money import from_units, to_units
from clarion.pricing.rates import load_rate_card
from clarion.sending.context import load_context
from clarion.sending.engine import Engine

TEXT = "Hi {{firstName}}, 20% off today with code {{code}}. Reply STOP to opt out"


def demo_phones(n: int) -> list[tuple[str, str]]:
    """(phone, first name): n deliverable numbers, then one undeliverable (ends 0001) and
    one refused (ends 0000) simulator number."""
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Linus", "Margaret"]
    out = [(f"+336123{i + 10:05d}", names[i % len(names)]) for i in range(n)]
    return [*out, ("+33612340001", "Dennis"), ("+33612340000", "Niklaus")]


async def run_demo(n: int, console: Console) -> None:
    settings = get_settings()
    await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    try:
        recipients = demo_phones(n)
        async with db.transaction() as s:
            account, key = await create_account(s, "demo", to_units("100"))
            lst = ContactList(account_id=account.id, name="demo list")
            s.add(lst)
            await s.flush()
            now = utcnow()
            ids = (
                await s.execute(
                    insert(Contact).returning(Contact.id),
                    [
                        {
                            "account_id": account.id,
                            "phone": phone,
                            "country": "FR",
                            "first_name": name,
                            "attributes": {},
                            "created_at": now,
                            "updated_at": now,
                        }
                        for phone, name in recipients
                    ],
                )
            ).scalars()
            await s.execute(
                insert(ListMember), [{"list_id": lst.id, "contact_id": cid} for cid in ids]
            )
            campaign = Campaign(
                account_id=account.id,
                name="Demo",
                channel="sms",
                status="draft",
                message={"text": TEXT, "templateParams": {"code": "DEMO20"}},
                list_ids=[lst.id],
                exclude_list_ids=[],
                sender="Clarion",
            )
            s.add(campaign)
            await s.flush()
            # Price it as confirm does (per recipient, after personalization) and reserve.
            ctx = await load_context(s, campaign.id)
            assert ctx is not None
            rates = await load_rate_card(s)
            price = 0
            for phone, name in recipients:
                contact: dict[str, object] = {
                    "firstName": name,
                    "lastName": None,
                    "phone": phone,
                    "attributes": {},
                }
                price += ctx.render(0, "sms", phone, "FR", contact, rates).price
            await ledger.reserve(s, account.id, campaign.id, price)
            campaign.reserved = price
            campaign.status = "sending"
            campaign.confirmed_at = campaign.started_at = utcnow()
            campaign_id, account_id = campaign.id, account.id
        console.print(f"account {account_id} (API key, shown once: [bold]{key}[/bold])")
        console.print(
            f"campaign {campaign_id}: {len(recipients)} recipients, "
            f"{from_units(price)} credits reserved; sending through the simulator..."
        )
        engine = Engine(settings, db)
        await engine.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                async with db.session(write=False) as s:
                    c = (
                        await s.execute(select(Campaign).where(Campaign.id == campaign_id))
                    ).scalar_one()
                console.print(
                    f"  {c.status:<9} queued {c.queued}  sending {c.sending}  sent {c.sent}  "
                    f"delivered {c.delivered}  failed {c.failed}  spent {from_units(c.spent)}"
                )
                if c.status == "completed" and c.delivered + c.read + c.failed == c.recipients:
                    break
        finally:
            await engine.stop()
        console.print(
            "done: see GET /campaigns/{id} and GET /campaigns/{id}/messages with the key above "
            "(`clarion serve`)."
        )
    finally:
        await db.dispose()
