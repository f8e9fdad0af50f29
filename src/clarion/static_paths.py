"""A path served by a static route (`/campaigns/stats`) is never read as the parameter of
another route (`/campaigns/{campaign_id}`): a method the static path does not serve is a
405 naming the methods it does, not a 422 about "stats" not being an id."""

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Receive, Scope, Send

from clarion.problems import problem_response


def static_methods(app: ASGIApp) -> dict[str, set[str]]:
    """Path -> methods, for every route without a path parameter."""
    found: dict[str, set[str]] = {}
    for route in iter_route_contexts(getattr(app, "routes", [])):
        path = getattr(route, "path_format", None)
        methods = getattr(route, "methods", None)
        if path and methods and "{" not in path:
            found.setdefault(path, set()).update(methods)
    for methods in found.values():
        if "GET" in methods:
            methods.add("HEAD")
    return found


class StaticPathsFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._static: dict[str, set[str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._static is None:  # routes are all added once the app serves
                self._static = static_methods(scope["app"])
            methods = self._static.get(scope["path"])
            if methods is not None and scope["method"] not in methods:
                response = problem_response(
                    405,
                    "Method not allowed",
                    f"{scope['method']} is not allowed on {scope['path']}.",
                )
                response.headers["Allow"] = ", ".join(sorted(methods))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
