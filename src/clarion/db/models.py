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
from clarion.audit.models import AuditEvent
from clarion.campaigns.models import Campaign
from clarion.db.base import Base
from clarion.delivery.models import ReceiptEvent
from clarion.links.models import Click, Link
from clarion.messages.models import CampaignTally, Message
from clarion.people.models import LoginThrottle, User, UserSession
from clarion.pricing.models import Rate
from clarion.templates.models import Template

__all__ = [
    "Account",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignTally",
    "Click",
    "Contact",
    "ContactImport",
    "ContactList",
    "ContactOptOut",
    "CreditLedger",
    "IdempotencyRecord",
    "Link",
    "ListMember",
    "LoginThrottle",
    "Message",
    "OptOutEvent",
    "Rate",
    "ReceiptEvent",
    "SystemSetting",
    "Template",
    "User",
    "UserSession",
]
