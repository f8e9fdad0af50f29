"""Campaign test fixtures: data written straight through the ORM (contacts, lists, opt-outs,
rates, templates, messages) and small request helpers."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from clarion.audience.models import Contact, ContactList, ContactOptOut, ListMember
from clarion.campaigns.models import Campaign
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.messages.models import Message
from clarion.money import to_units
from clarion.pricing.models import Rate
from clarion.templates.models import Template
from tests.conftest import AccountClient

# Default rates (credits per unit) used by most tests: no "*" row, so ZZ is unpriced.
RATES = [
    ("sms", "FR", "", "0.07"),
    ("sms", "DE", "", "0.09"),
    ("sms", "US", "", "0.01"),
    ("rcs", "FR", "basic", "0.03"),
    ("rcs", "FR", "single", "0.05"),
    ("rcs", "DE", "", "0.04"),
    ("whatsapp", "FR", "marketing", "0.11"),
    ("whatsapp", "FR", "utility", "0.02"),
    ("whatsapp", "DE", "", "0.08"),
]


@dataclass
class World:
    """Writes test data directly (the audience and templates parts have their own APIs)."""

    db: Database
    _phone: int = 0

    async def rates(self, rows: Sequence[tuple[str, str, str, str]] = RATES) -> None:
        async with self.db.transaction() as s:
            await s.execute(Rate.__table__.delete())
            for channel, country, category, price in rows:
                s.add(
                    Rate(
                        channel=channel,
                        country=country,
                        category=category,
                        price=to_units(Decimal(price)),
                    )
                )

    async def new_list(self, account: AccountClient, name: str = "list") -> int:
        async with self.db.transaction() as s:
            row = ContactList(account_id=account.id, name=name)
            s.add(row)
            await s.flush()
            return row.id

    def next_phone(self, country: str) -> str:
        self._phone += 1
        prefix = {"FR": "+336", "DE": "+4915", "US": "+1202", "ZZ": "+999"}[country]
        return f"{prefix}{self._phone:08d}"

    async def contacts(
        self,
        account: AccountClient,
        list_ids: Sequence[int],
        people: Sequence[dict[str, Any]],
    ) -> list[int]:
        """Create contacts (dicts with country, firstName, lastName, attributes, phone) and
        add them to every list of `list_ids`."""
        ids = []
        async with self.db.transaction() as s:
            for p in people:
                country = p.get("country", "FR")
                c = Contact(
                    account_id=account.id,
                    phone=p.get("phone") or self.next_phone(country),
                    country=country,
                    first_name=p.get("firstName"),
                    last_name=p.get("lastName"),
                    attributes=p.get("attributes", {}),
                )
                s.add(c)
                await s.flush()
                ids.append(c.id)
            await self._add(s, list_ids, ids)
        return ids

    async def add_members(self, list_ids: Sequence[int], contact_ids: Sequence[int]) -> None:
        async with self.db.transaction() as s:
            await self._add(s, list_ids, contact_ids)

    async def _add(self, s: Any, list_ids: Sequence[int], contact_ids: Sequence[int]) -> None:
        for list_id in list_ids:
            for cid in contact_ids:
                s.add(ListMember(list_id=list_id, contact_id=cid))
            await s.execute(
                update(ContactList).where(ContactList.id == list_id).values(updated_at=utcnow())
            )

    async def people(
        self, account: AccountClient, list_ids: Sequence[int], n: int, country: str = "FR"
    ) -> list[int]:
        return await self.contacts(account, list_ids, [{"country": country}] * n)

    async def opt_out(self, contact_ids: Sequence[int], channel: str = "sms") -> None:
        async with self.db.transaction() as s:
            for cid in contact_ids:
                s.add(ContactOptOut(contact_id=cid, channel=channel))

    async def template(self, account: AccountClient, **fields: Any) -> int:
        fields.setdefault("name", f"t{self.next_phone('FR')}")
        fields.setdefault("channel", "whatsapp")
        fields.setdefault("body", "Hello {{firstName}}")
        fields.setdefault("category", "marketing" if fields["channel"] == "whatsapp" else None)
        async with self.db.transaction() as s:
            row = Template(account_id=account.id, **fields)
            s.add(row)
            await s.flush()
            return row.id

    async def set_template(self, template_id: int, **values: Any) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(Template)
                .where(Template.id == template_id)
                .values(updated_at=utcnow(), **values)
            )

    async def campaign_row(self, campaign_id: int, **values: Any) -> None:
        async with self.db.transaction() as s:
            await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))

    async def messages(
        self, account: AccountClient, campaign_id: int, statuses: Sequence[str]
    ) -> None:
        """Materialize messages the way the engine would, with counters in step."""
        async with self.db.transaction() as s:
            counts: dict[str, int] = {}
            for i, status in enumerate(statuses):
                s.add(
                    Message(
                        campaign_id=campaign_id,
                        account_id=account.id,
                        contact_id=10_000 + i,
                        phone=f"+3370000{i:04d}",
                        country="FR",
                        channel="sms",
                        status=status,
                    )
                )
                counts[status] = counts.get(status, 0) + 1
            await s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(
                    recipients=len(statuses),
                    materialized_at=utcnow(),
                    **{k: getattr(Campaign, k) + v for k, v in counts.items()},
                )
            )


@pytest.fixture
async def world(db: Database) -> World:
    w = World(db)
    await w.rates()
    return w


def sms_body(list_ids: Sequence[int], text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {
        "name": "c",
        "channel": "sms",
        "message": {"text": text},
        "listIds": list(list_ids),
    } | extra


async def create(account: AccountClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await account.post("/campaigns", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def balance(account: AccountClient) -> dict[str, Any]:
    response = await account.get("/account")
    assert response.status_code == 200
    return dict(response.json())


def fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def iso(dt: datetime) -> str:
    return dt.isoformat()
