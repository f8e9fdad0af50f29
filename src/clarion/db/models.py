"""Imports every model so that Base.metadata knows the whole schema (Alembic, tests)."""

from clarion.accounts.models import Account, ApiKey, CreditLedger, IdempotencyRecord, SystemSetting
from clarion.audience.models import (
    Contact,
    ContactConsent,
    ContactImport,
    ContactList,
    ContactOptOut,
    ListMember,
    OptOutEvent,
)
from clarion.audit.models import AuditEvent
from clarion.campaigns.models import Campaign
from clarion.compliance.models import ComplianceSettingsRow
from clarion.db.base import Base
from clarion.delivery.models import InboundEvent, ReceiptEvent
from clarion.hooks.models import Hook, HookDelivery, HookEvent
from clarion.links.models import Click, Link
from clarion.messages.models import CampaignTally, Message
from clarion.people.models import LoginThrottle, User, UserSession
from clarion.pricing.models import Rate
from clarion.segments.models import Segment
from clarion.templates.models import Template

__all__ = [
    "Account",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignTally",
    "Click",
    "ComplianceSettingsRow",
    "Contact",
    "ContactConsent",
    "ContactImport",
    "ContactList",
    "ContactOptOut",
    "CreditLedger",
    "Hook",
    "HookDelivery",
    "HookEvent",
    "IdempotencyRecord",
    "InboundEvent",
    "Link",
    "ListMember",
    "LoginThrottle",
    "Message",
    "OptOutEvent",
    "Rate",
    "ReceiptEvent",
    "Segment",
    "SystemSetting",
    "Template",
    "User",
    "UserSession",
]
