"""Imports every model so that Base.metadata knows the whole schema (Alembic, tests)."""

from clarion.accounts.models import Account, ApiKey, CreditLedger, IdempotencyRecord, SystemSetting
from clarion.audience.models import (
    Contact,
    ContactImport,
    ContactList,
    ContactOptOut,
    ListMember,
    OptOutEvent,
)
from clarion.campaigns.models import Campaign
from clarion.db.base import Base
from clarion.delivery.models import ReceiptEvent
from clarion.messages.models import CampaignTally, Message
from clarion.pricing.models import Rate
from clarion.templates.models import Template

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Campaign",
    "CampaignTally",
    "Contact",
    "ContactImport",
    "ContactList",
    "ContactOptOut",
    "CreditLedger",
    "IdempotencyRecord",
    "ListMember",
    "Message",
    "OptOutEvent",
    "Rate",
    "ReceiptEvent",
    "SystemSetting",
    "Template",
]
