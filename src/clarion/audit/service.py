"""The audit trail, written in one place.

Every request that changes something through the request's write session (`SessionDep`)
gets one row, written by `record_request` just before that transaction commits (so the row
and the change commit or roll back together). What the row says is derived from the route
(`PUT /campaigns/{campaign_id}/confirm` -> action `campaign.confirm`, target
`{"type": "campaign", "id": 7}`; a create's target is the row it inserted) and the caller
(the principal auth resolved, or the admin token); a route may refine it with `describe`.
Changes made outside a request's write session (sign-in, sign-out, an import's start) call
`record` themselves.
"""

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from clarion.audit.models import AuditEvent
from clarion.auth import is_admin, principal_of
from clarion.db.base import utcnow

_INSERTED = "audit_inserted"
_NOTES = "clarion.audit"  # what describe() said, in the request's ASGI scope
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_SECRET_WORDS = ("password", "secret", "token", "apikey", "key")
_MAX_DETAIL_BYTES = 4096

# Path segment -> (target type, table whose inserted row is a create's target).
_RESOURCES = {
    "accounts": ("account", "account"),
    "account": ("account", "account"),
    "campaigns": ("campaign", "campaign"),
    "contacts": ("contact", "contact"),
    "lists": ("list", "contact_list"),
    "segments": ("segment", "segment"),
    "templates": ("template", "template"),
    "imports": ("import", "contact_import"),
    "users": ("user", "user_account"),
    "keys": ("key", "api_key"),
    "rates": ("rates", ""),
}
# Sub-collections: a write on them is named after the method (`list.contacts.add`).
_COLLECTION_VERBS = {"POST": "add", "PUT": "update", "DELETE": "remove"}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


@dataclass(frozen=True)
class Actor:
    type: str  # user, key, admin, system
    id: int | None
    name: str | None


ADMIN = Actor("admin", None, "admin")


async def record(
    session: AsyncSession,
    *,
    account_id: int | None,
    actor: Actor,
    action: str,
    target: tuple[str, int | None] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the caller's transaction."""
    session.add(
        AuditEvent(
            account_id=account_id,
            at=utcnow(),
            actor_type=actor.type,
            actor_id=actor.id,
            actor_name=actor.name,
            action=action,
            target_type=target[0] if target else None,
            target_id=target[1] if target else None,
            detail=detail or {},
        )
    )
    await session.flush()


def describe(
    request: Request,
    *,
    action: str | None = None,
    target: tuple[str, int | None] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Refine the row this request will write (its action, target or detail)."""
    notes = request.scope.setdefault(_NOTES, {})
    if action is not None:
        notes["action"] = action
    if target is not None:
        notes["target"] = target
    if detail is not None:
        notes["detail"] = detail


def prepare(session: AsyncSession, request: Request) -> None:
    """Start collecting the rows the request inserts (a create's target is one of them)."""
    if request.method not in _SAFE:
        session.sync_session.info[_INSERTED] = []


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    inserted = session.info.get(_INSERTED)
    if inserted is None:
        return
    for obj in session.new:
        table = getattr(obj, "__tablename__", None)
        if table is not None and len(inserted) < 64:
            inserted.append((table, getattr(obj, "id", None)))


def _actor(request: Request) -> tuple[Actor, int | None] | None:
    principal = principal_of(request)
    if principal is not None:
        return Actor(principal.kind, principal.id, principal.name), principal.account_id
    if is_admin(request):
        return ADMIN, None
    return None


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _clean(v)
            for k, v in value.items()
            if not any(k.lower().endswith(word) for word in _SECRET_WORDS)
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _body_detail(request: Request) -> dict[str, Any]:
    """The JSON body (secrets left out) when it is small, else its size."""
    body: bytes | None = getattr(request, "_body", None)
    if not body:
        return {}
    if len(body) > _MAX_DETAIL_BYTES:
        return {"bodyBytes": len(body)}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"bodyBytes": len(body)}
    return {"request": _clean(parsed)}


def _derive(request: Request, inserted: list[tuple[str, Any]]) -> tuple[str, str, int | None]:
    """(action, target type, target id) from the route's path."""
    route = request.scope.get("route")
    path: str = getattr(route, "path", request.url.path)
    parts = [p for p in path.split("/") if p and p != "admin"]
    params = request.path_params
    literals = [p for p in parts if not p.startswith("{")]
    head = literals[0] if literals else "request"
    target_type, table = _RESOURCES.get(head, (head.rstrip("s"), ""))
    rest = literals[1:]
    if head == "account" and rest and rest[0] in _RESOURCES:  # /account/keys
        target_type, table = _RESOURCES[rest[0]]
        rest = rest[1:]
    if not rest:
        verb = _VERBS.get(request.method, request.method.lower())
    elif rest[-1] in _RESOURCES and request.method in _COLLECTION_VERBS:
        verb = ".".join([*rest, _COLLECTION_VERBS[request.method]])
    else:
        verb = ".".join(rest)
    target_id: int | None = None
    for name in (p.strip("{}") for p in parts if p.startswith("{")):
        value = params.get(name)
        if value is not None and str(value).isdigit():
            target_id = int(value)
            break
    if target_id is None and table:
        target_id = next((pk for t, pk in inserted if t == table and pk is not None), None)
    return f"{target_type}.{verb}", target_type, target_id


async def record_request(session: AsyncSession, request: Request) -> None:
    """The one row for a request that changed something (called before it commits)."""
    if request.method in _SAFE:
        return
    who = _actor(request)
    if who is None:
        return  # not an account's or the operator's request (e.g. a provider webhook)
    actor, account_id = who
    inserted: list[tuple[str, Any]] = session.sync_session.info.pop(_INSERTED, None) or []
    action, target_type, target_id = _derive(request, inserted)
    notes = request.scope.get(_NOTES, {})
    action = notes.get("action") or action
    target = notes.get("target") or (target_type, target_id)
    detail = notes.get("detail")
    if detail is None:
        detail = _body_detail(request)
    if account_id is None:  # the operator: the account the request is about
        if target[0] == "account":
            account_id = target[1]
        else:
            raw = request.path_params.get("account_id")
            account_id = int(raw) if raw is not None and str(raw).isdigit() else None
    await record(
        session, account_id=account_id, actor=actor, action=action, target=target, detail=detail
    )


class AuditHook:
    """Plugs `prepare` and `record_request` into every request's write session."""

    def prepare(self, session: AsyncSession, request: Request) -> None:
        prepare(session, request)

    async def before_commit(self, session: AsyncSession, request: Request) -> None:
        await record_request(session, request)
