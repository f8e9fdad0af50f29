"""The served OpenAPI document, completed with what FastAPI cannot see by itself: how each
operation authenticates (API key, session cookie, admin token), the role it needs
(`x-required-role`), and the problem documents it may answer (401, 403)."""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts

from clarion import auth, roles
from clarion.people import sessions

_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem document",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "requiredRole": {
            "type": "string",
            "enum": list(roles.ROLES),
            "description": "on a 403 for want of a role: the least role that may do this",
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An account's API key (`clk_...`), with the key's role.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": sessions.SESSION_COOKIE,
        "description": "The session cookie `POST /auth/login` sets, with the user's role. "
        f"Writes (not GET/HEAD/OPTIONS) must also send `{sessions.CSRF_HEADER}` equal to "
        f"the `{sessions.CSRF_COOKIE}` cookie (403 otherwise).",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's admin token (`CLARION_ADMIN_TOKEN`).",
    },
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _complete(app: FastAPI, schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(_SCHEMES)
    schema["components"].setdefault("schemas", {})["Problem"] = _PROBLEM
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not getattr(route, "include_in_schema", False):
            continue
        calls = set(_calls(dependant))
        account = auth.CURRENT_PRINCIPAL_CALL in calls
        admin = auth.ADMIN_CALL in calls
        if not (account or admin):
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format or "", {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _problem("No, an unknown or a revoked credential"))
            if admin:
                operation["security"] = [{"adminToken": []}]
                continue
            declared = (route.openapi_extra or {}).get(roles.REQUIRED_ROLE)
            role = declared or roles.default_for(method)
            operation[roles.REQUIRED_ROLE] = role
            operation["security"] = [{"apiKey": []}, {"session": []}]
            responses.setdefault(
                "403",
                _problem(
                    f"The caller's role is below {role} (`requiredRole`), or a session "
                    "write lacks its CSRF header"
                ),
            )


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _complete(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
