"""Errors that carry their HTTP status; one handler renders them as RFC 9457 problems."""

from typing import Any


class ClarionError(Exception):
    status: int = 400
    title: str = "Bad request"
    type: str = "about:blank"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        # Response headers that go with the problem (Retry-After, WWW-Authenticate...).
        self.headers: dict[str, str] = {}

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class NotFound(ClarionError):
    status = 404
    title = "Not found"


class Unauthorized(ClarionError):
    status = 401
    title = "Unauthorized"


class Forbidden(ClarionError):
    status = 403
    title = "Forbidden"


class RoleRequired(Forbidden):
    """The caller's role does not allow this; `requiredRole` names the least role that does."""

    type = "https://clarion.dev/problems/role-required"
    title = "Role required"

    def __init__(self, required: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"This needs the {required} role or above.", requiredRole=required
        )


class TooManyRequests(ClarionError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retryAfter=retry_after, **extra)
        self.headers["Retry-After"] = str(retry_after)


class Conflict(ClarionError):
    status = 409
    title = "Conflict"


class Unprocessable(ClarionError):
    """A semantically invalid request; `errors` lists the fields when known."""

    status = 422
    title = "Unprocessable request"

    def __init__(
        self, detail: str | None = None, *, field: str | None = None, **extra: Any
    ) -> None:
        if field is not None and "errors" not in extra:
            extra["errors"] = [{"field": field, "message": detail or self.title}]
        super().__init__(detail, **extra)


class InsufficientCredits(ClarionError):
    status = 402
    title = "Insufficient credits"


class ServiceUnavailable(ClarionError):
    status = 503
    title = "Service unavailable"
