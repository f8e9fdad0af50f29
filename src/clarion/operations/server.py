"""A worker's metrics port (`clarion worker --metrics-port N`): the same exposition and the
same token rule as the API's `GET /metrics`, served by aiohttp next to the engine."""

from __future__ import annotations

from aiohttp import web

from clarion import metrics
from clarion.config import Settings
from clarion.db.base import utcnow
from clarion.db.session import Database
from clarion.operations import gauges


def metrics_app(settings: Settings, db: Database) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        if not settings.metrics_token:
            return web.Response(status=404, text="not found\n")
        if not metrics.token_ok(settings.metrics_token, request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="unauthorized\n",
                headers={"WWW-Authenticate": 'Bearer realm="clarion"'},
            )
        body = await gauges.exposition(db, utcnow(), settings.metrics_queue_cap)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


async def serve_metrics(
    settings: Settings, db: Database, port: int, host: str = "0.0.0.0"
) -> web.AppRunner:
    """Start serving; the caller stops it with `await runner.cleanup()`."""
    runner = web.AppRunner(metrics_app(settings, db), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
