"""Segment fixtures: a small cast of contacts whose fields exercise every type of value, and
the engine fixtures for sending to them."""

from datetime import UTC, datetime
from typing import Any

import pytest

from clarion.audience.models import Contact
from clarion.db.session import Database
from tests.conftest import AccountClient
from tests.sending.conftest import engine_settings, make_dispatcher, sms  # noqa: F401

CAST: dict[str, dict[str, Any]] = {
    "ann": {
        "phone": "+33612345001",
        "country": "FR",
        "region": "FR-75C",
        "first_name": "Ann",
        "last_name": "Lee",
        "attributes": {
            "city": "Paris",
            "tier": "gold",
            "age": 31,
            "vip": True,
            "score": 5.5,
            "note": "50% off_now",
        },
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    },
    "bob": {
        "phone": "+4915112345002",
        "country": "DE",
        "first_name": "Bob",
        "attributes": {
            "city": "Berlin",
            "tier": "silver",
            "age": "31",
            "vip": False,
            "tags": ["gold"],
        },
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
    },
    "cy": {
        "phone": "+12025550103",
        "country": "US",
        "region": "US-FL",
        "first_name": "Cy",
        "last_name": "O'Hara",
        "attributes": {"city": "paris", "age": 45, "tier": None, "score": 5},
        "created_at": datetime(2026, 6, 1, tzinfo=UTC),
    },
    "dee": {
        "phone": "+33612345004",
        "country": "FR",
        "attributes": {"a.b": 1},
        "created_at": datetime(2026, 9, 1, 12, 30, tzinfo=UTC),
    },
    "eve": {
        "phone": "+33612345005",
        "country": "FR",
        "first_name": "Évé",
        "attributes": {"city": "Zürich", "age": 7.5, "note": "5 off now", "it's": "yes"},
        "created_at": datetime(2026, 11, 30, tzinfo=UTC),
    },
}


async def seed_cast(db: Database, account: AccountClient) -> dict[str, int]:
    """The cast in the account: name -> contact id."""
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        for name, fields in CAST.items():
            contact = Contact(account_id=account.id, updated_at=fields["created_at"], **fields)
            s.add(contact)
            await s.flush()
            ids[name] = contact.id
    return ids


@pytest.fixture
async def cast(db: Database, account: AccountClient) -> dict[str, int]:
    return await seed_cast(db, account)
