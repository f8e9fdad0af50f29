"""Roles, each including the one before: viewer < editor < manager < owner.

viewer reads everything of the account; editor creates, edits and deletes contacts, lists,
imports, templates and draft campaigns, prices, test-sends and submits for approval; manager
confirms, schedules, approves, rejects, pauses, resumes and cancels; owner manages users,
API keys and account settings. Users and API keys both carry one.
"""

from typing import Literal

Role = Literal["viewer", "editor", "manager", "owner"]
VIEWER: Role = "viewer"
EDITOR: Role = "editor"
MANAGER: Role = "manager"
OWNER: Role = "owner"

ROLES: tuple[Role, ...] = (VIEWER, EDITOR, MANAGER, OWNER)


def rank(role: str) -> int:
    return ROLES.index(role)


def allows(role: str, required: str) -> bool:
    """True when `role` includes `required`."""
    return rank(role) >= rank(required)


REQUIRED_ROLE = "x-required-role"
"""The OpenAPI extension a route declares its least role with (see `requires`)."""


def requires(role: Role) -> dict[str, str]:
    """`openapi_extra` for a route that needs more than the default: reading (GET) needs
    viewer, anything else editor. The role check itself is in clarion.auth (one place), and
    the served OpenAPI names each operation's role."""
    return {REQUIRED_ROLE: role}


def default_for(method: str) -> str:
    return VIEWER if method in ("GET", "HEAD", "OPTIONS") else EDITOR
