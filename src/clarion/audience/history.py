"""The contact's history: every opt-out, opt-in and consent change, written here only.

Whoever changes a contact's opt-outs or consent says why with a `Cause`: the source
(`api` for an API key, `console` for a signed-in user, `import` for a CSV import, `inbound`
for a message or event the person sent, `provider` for what a provider reported) and the
actor (the key, user, provider or system that caused it).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clarion.audience import repository
from clarion.auth import Principal

SOURCES = ("inbound", "api", "import", "console", "provider")
KINDS = {"out": "opt_out", "in": "opt_in", "consent": "consent"}


@dataclass(frozen=True, slots=True)
class Cause:
    source: str
    actor_type: str  # key | user | provider | system
    actor_id: int | None
    actor_name: str | None

    @classmethod
    def of(cls, principal: Principal, source: str | None = None) -> "Cause":
        """A request's caller: `api` for an API key, `console` for a signed-in user (or
        `source`, e.g. `import`, for what the request started)."""
        default = "console" if principal.kind == "user" else "api"
        return cls(source or default, principal.kind, principal.id, principal.name)

    @classmethod
    def provider(cls, name: str, *, inbound: bool) -> "Cause":
        """What a provider brought: a person's message or event (`inbound`) or the
        provider's own report (`provider`)."""
        return cls("inbound" if inbound else "provider", "provider", None, name)

    @classmethod
    def system(cls, source: str, name: str) -> "Cause":
        return cls(source, "system", None, name)


async def record(
    session: AsyncSession,
    contact_ids: Sequence[int],
    action: str,
    channel: str,
    cause: Cause,
    *,
    detail: str | None = None,
    status: str | None = None,
    at: datetime | None = None,
) -> None:
    """One history entry per contact: `action` is "out", "in" or "consent" (with the new
    `status`)."""
    await repository.add_history(
        session,
        contact_ids,
        {
            "channel": channel,
            "action": action,
            "source": cause.source,
            "detail": detail,
            "status": status,
            "actor_type": cause.actor_type,
            "actor_id": cause.actor_id,
            "actor_name": cause.actor_name,
            **({"created_at": at} if at is not None else {}),
        },
    )
