"""Serve the web console (a client of the public API) next to the API.

The console's client routes mirror the API's paths (`/campaigns/7` is both the campaign page
and the campaign's JSON), so the two are told apart by what the caller asks for: a browser
navigating to a page sends `Accept: text/html` and gets the console's `index.html` (history
fallback); API clients (curl, scripts, the console's own `fetch`) get the API as before.
Hashed build assets under `/assets/` are cached for a year; `index.html` is revalidated on
every load so that a new build is picked up at once.
"""

from pathlib import Path

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

PACKAGE_DIST = Path(__file__).parent / "console_dist"
ASSETS_PREFIX = "/assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Pages of the API itself that a browser navigates to; never the console's.
API_PAGES = ("/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics")
# /l/: a recipient's browser follows a tracked link to its redirect, never to the console.
API_PAGE_PREFIXES = ("/webhooks/", "/admin/", "/docs/", "/l/")

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clarion</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;
color:#1f2933}code,pre{background:#f1f3f5;border-radius:4px;padding:.1rem .3rem}
pre{padding:.75rem}</style></head>
<body><main><h1>Clarion</h1>
<p>The API is running, but the web console has not been built.</p>
<p>Build it with Node.js 20 and npm, from the repository root:</p>
<pre>make console</pre>
<p>(or <code>cd console &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload this page.
<code>make run</code> builds it for you before starting the server.</p>
<p>The API contract is at <a href="/docs">/docs</a>.</p></main></body></html>
"""


def is_page_request(scope: Scope) -> bool:
    """A browser navigating to a page (not a script fetching JSON, events or CSV)."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    path: str = scope["path"]
    if path == "/":
        return True
    if path in API_PAGES or path.startswith(API_PAGE_PREFIXES):
        return False
    headers = Headers(scope=scope)
    if headers.get("sec-fetch-mode") == "navigate":
        return True
    accept = headers.get("accept", "")
    return accept.split(",", 1)[0].strip().startswith("text/html")


class ConsoleFiles:
    """The built console: hashed assets, top-level files and the history fallback."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist.resolve()

    @property
    def built(self) -> bool:
        return (self.dist / "index.html").is_file()

    def asset(self, path: str, within: str = "") -> Path | None:
        """The file that `path` names under the build folder's `within`, if any (never outside
        it: `..` and links that lead elsewhere find nothing)."""
        root = self.dist / within
        candidate = (self.dist / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    def response(self, path: str) -> Response:
        if not self.built:
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": REVALIDATE})
        if path.startswith(ASSETS_PREFIX):
            found = self.asset(path, within="assets")
            if found is None:
                return Response("Not found", status_code=404, media_type="text/plain")
            return FileResponse(found, headers={"Cache-Control": IMMUTABLE})
        top_level = self.asset(path) if path.count("/") == 1 and path != "/" else None
        if top_level is not None and top_level.name != "index.html":
            return FileResponse(top_level, headers={"Cache-Control": REVALIDATE})
        return FileResponse(self.dist / "index.html", headers={"Cache-Control": REVALIDATE})


class ConsoleMiddleware:
    """Outermost layer: answers page navigations and console files, passes the rest on."""

    def __init__(self, app: ASGIApp, dist: Path | None = None) -> None:
        self.app = app
        self.files = ConsoleFiles(dist or PACKAGE_DIST)
        self.compressed = GZipMiddleware(self._serve, minimum_size=512)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.files.response(scope["path"])(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_console(scope):
            await self.compressed(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _is_console(self, scope: Scope) -> bool:
        if scope["method"] not in ("GET", "HEAD"):
            return False
        path: str = scope["path"]
        if path.startswith(ASSETS_PREFIX):
            return True
        if is_page_request(scope):
            return True
        # Top-level build files (favicon.svg, robots.txt) that no API route shadows.
        return (
            path.count("/") == 1
            and "." in path
            and path not in API_PAGES
            and self.files.asset(path) is not None
        )
