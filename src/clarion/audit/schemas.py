from typing import Any, Literal

from pydantic import Field

from clarion.schemas import OutModel, UtcDatetime


class ActorOut(OutModel):
    type: Literal["user", "key", "admin", "system"]
    id: int | None
    name: str | None = Field(description="the user's email, the key's name, or admin")


class TargetOut(OutModel):
    type: str
    id: int | None


class AuditEventOut(OutModel):
    id: int
    at: UtcDatetime
    actor: ActorOut
    action: str = Field(description="`resource.verb`, e.g. campaign.confirm, user.update")
    target: TargetOut | None
    detail: dict[str, Any]
