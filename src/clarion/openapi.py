"""The served OpenAPI document, completed where FastAPI leaves gaps:

- `securitySchemes`: `apiKey` (an account's API key, HTTP bearer), `session` (the console's
  cookie) and `adminToken`, set on each operation from the dependency it really uses (open
  operations say `security: []`), with the role an account operation needs
  (`x-required-role`);
- every error an operation can answer is documented as `application/problem+json` with the
  `Problem` schema (FastAPI documents only 422, as `application/json`), plus a `default`;
- the provider webhooks, which read their raw body to check a signature first, document it.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from clarion import auth, logs, roles
from clarion.people import sessions
from clarion.problems import PROBLEM
from clarion.segments.schemas import FILTER_SCHEMA

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document; some carry more members (`errors`, "
    "`available`, `required`, `id`, ...).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "the fields at fault (422)",
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
    "additionalProperties": True,
}

WHY = {
    "400": "Malformed JSON body, or two `Authorization` headers",
    "401": "Missing, unknown or revoked credentials (`WWW-Authenticate` names the scheme)",
    "402": "Not enough available credits",
    "403": "The caller's role is below the operation's `x-required-role` (`requiredRole`), "
    "or a session write lacks its CSRF header",
    "404": "No such resource in this account",
    "409": "The resource's state or the account's balance does not allow it",
    "413": "The request body is too large",
    "422": "A field is invalid (`errors` lists them), or the URL carries `%00`",
    "503": "A dependency (database, provider) is not available",
}

SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An account's API key (`clk_...`), from `POST /admin/accounts`, "
        "`clarion accounts create` or `POST /account/keys`, with the key's role.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": sessions.SESSION_COOKIE,
        "description": "The session cookie `POST /auth/login` sets, with the user's role. "
        f"Writes (not GET/HEAD/OPTIONS) must also send `{sessions.CSRF_HEADER}` equal to "
        f"the `{sessions.CSRF_COOKIE}` cookie (403 otherwise).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The metrics token (`CLARION_METRICS_TOKEN`); `GET /metrics` is 404 "
        "while it is unset.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token (`CLARION_ADMIN_TOKEN`, or printed at first start).",
    },
}

# Provider webhooks read the raw body (the signature covers its bytes): their bodies.
WEBHOOK_BODIES = {
    ("/webhooks/whatsapp", "post"): ("application/json", {"type": "object"}),
    ("/webhooks/rbm", "post"): ("application/json", {"type": "object"}),
    ("/webhooks/twilio", "post"): (
        "application/x-www-form-urlencoded",
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
}


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _security(route: RouteContext) -> list[dict[str, list[str]]]:
    calls = _calls(route.dependant)
    if auth.ADMIN_CALL in calls:
        return [{"adminToken": []}]
    if auth.METRICS_CALL in calls:
        return [{"metricsToken": []}]
    if auth.CURRENT_PRINCIPAL_CALL in calls:
        return [{"apiKey": []}, {"session": []}]
    return []


def _required_role(route: RouteContext, method: str) -> str:
    extra = getattr(route.original_route, "openapi_extra", None) or {}
    declared = extra.get(roles.REQUIRED_ROLE)
    return str(declared or roles.default_for(method.upper()))


def _error_codes(path: str, method: str, operation: dict[str, Any], secured: bool) -> set[str]:
    if path == "/metrics":
        return {"401", "404", "422"}  # the token; the URL (`%00`) as everywhere
    codes = {"422"}
    has_body = "requestBody" in operation
    if secured or has_body:
        codes.add("400")
    if secured:
        codes |= {"401", "403"}
    if has_body:
        codes.add("413")
    if "{" in path or secured:
        codes.add("404")
    if method in ("post", "put", "delete"):
        codes.add("409")
    if path.startswith("/campaigns/{campaign_id}") and method in ("put", "post"):
        codes.add("402")
    if path.startswith("/webhooks/"):
        codes |= {"400", "401"}
    if path == "/webhooks/whatsapp" and method == "get":
        codes.add("403")
    if path == "/readyz" or path.endswith("/test"):
        codes.add("503")
    return codes


NUL_FREE = "^[^\\u0000]*$"


JSON_VALUE: dict[str, Any] = {
    "description": "any JSON value without the NUL character in its strings or keys",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": NUL_FREE},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NUL_FREE},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ],
}


def _nul_free_deep(node: Any) -> None:
    """No string in a request may hold NUL (`schemas.CamelModel` refuses it: no database
    stores it), nor may a key of a free-form object; strings in answers never do."""
    if isinstance(node, list):
        for item in node:
            _nul_free_deep(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not any(
        key in node for key in ("pattern", "enum", "format", "const", "contentMediaType")
    ):
        node["pattern"] = NUL_FREE
    free_form = "properties" not in node  # a model's extra members are refused or ignored
    if node.get("type") == "object" and free_form and node.get("additionalProperties", True):
        node.setdefault("propertyNames", {}).setdefault("pattern", NUL_FREE)
        if node.get("additionalProperties") is True:
            node["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
    for key in ("properties", "$defs"):
        for child in node.get(key, {}).values():
            _nul_free_deep(child)
    for key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "prefixItems"):
        if key in node:
            _nul_free_deep(node[key])


def _forbid_nul(schema: dict[str, Any]) -> None:
    """A URL carrying %00 is refused (422, `limits.NoNulInUrl`): string parameters say so."""
    if any(key in schema for key in ("pattern", "enum", "format", "anyOf", "const")):
        if "anyOf" in schema and "pattern" not in schema and "enum" not in schema:
            for option in schema["anyOf"]:
                if option.get("type") == "string":
                    _forbid_nul(option)
        return
    if schema.get("type") == "string":
        schema["pattern"] = NUL_FREE


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


REQUEST_ID_SCHEMA = {"type": "string", "pattern": "^" + logs.REQUEST_ID.pattern + "$"}
REQUEST_ID_PARAMETER = {
    "name": logs.REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "Your id for this request (1 to 128 letters, digits, `.`, `_`, `:`, `-`, "
    "starting with a letter or digit): echoed in the response and written in the server's "
    "log lines. Absent or not of that form, the server makes one up.",
    "schema": {"type": "string"},
}
REQUEST_ID_HEADER = {
    "description": "The request's id: the caller's `X-Request-ID` when acceptable, else "
    "one the server made; the server's log lines for this request carry it.",
    "schema": REQUEST_ID_SCHEMA,
}


def _with_request_id(operation: dict[str, Any]) -> None:
    """Every operation takes an optional X-Request-ID and every answer echoes one."""
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == logs.REQUEST_ID_HEADER for p in parameters):
        parameters.append({"$ref": "#/components/parameters/RequestId"})
    for response in operation["responses"].values():
        response.setdefault("headers", {})[logs.REQUEST_ID_HEADER] = {
            "$ref": "#/components/headers/RequestId"
        }


def complete(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    routes = {
        (route.path_format, method.lower()): route
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    components = schema.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["JsonValue"] = JSON_VALUE
    components.setdefault("parameters", {})["RequestId"] = REQUEST_ID_PARAMETER
    components.setdefault("headers", {})["RequestId"] = REQUEST_ID_HEADER
    schemas["ContactFilter"] = FILTER_SCHEMA
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            security = _security(route) if route is not None else []
            operation["security"] = security
            if route is not None and {"session": []} in security:
                operation[roles.REQUIRED_ROLE] = _required_role(route, method)
            body = WEBHOOK_BODIES.get((path, method))
            if body is not None and "requestBody" not in operation:
                operation["requestBody"] = {
                    "required": True,
                    "content": {body[0]: {"schema": body[1]}},
                }
            for parameter in operation.get("parameters", []):
                _forbid_nul(parameter.get("schema", {}))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _nul_free_deep(content.get("schema"))
            responses = operation.setdefault("responses", {})
            for code in sorted(_error_codes(path, method, operation, bool(security))):
                described = responses.get(code, {}).get("description")
                if not described or described == "Validation Error":
                    described = WHY.get(code, "Error")
                responses[code] = _problem(described)
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = _problem("")["content"]
            operation["responses"] = dict(sorted(responses.items()))
            operation["responses"]["default"] = _problem("Any other error, as a problem document")
            _with_request_id(operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for name, component in schemas.items():
        if name not in ("Problem", "JsonValue"):
            _nul_free_deep(component)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
