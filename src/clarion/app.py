"""The ASGI application: routers, problem+json handlers, and the lifespan that starts the
engine when it runs embedded."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from secrets import token_bytes

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from clarion import __version__, apidocs
from clarion.accounts.routes import admin_router as accounts_admin_router
from clarion.accounts.routes import router as account_router
from clarion.audience import tasks as audience_tasks
from clarion.audience.routes import router as audience_router
from clarion.audit.routes import router as audit_router
from clarion.audit.service import AuditHook
from clarion.auth import KEY_REVOKED_CHANNEL, Clock, forget_key
from clarion.campaigns.routes import router as campaigns_router
from clarion.campaigns.routes import templates_router as campaign_templates_router
from clarion.compliance.routes import router as compliance_router
from clarion.config import Settings, get_settings
from clarion.console import ConsoleMiddleware
from clarion.db.base import utcnow
from clarion.db.notify import Listener
from clarion.db.session import Database
from clarion.delivery.routes import router as delivery_router
from clarion.events.hub import EventHub
from clarion.events.routes import router as events_router
from clarion.hooks.routes import router as hooks_router
from clarion.limits import BodySizeLimit, NoNulInUrl
from clarion.links.clicks import ClickWriter
from clarion.links.routes import redirect_router
from clarion.links.routes import router as links_router
from clarion.logs import RequestIdMiddleware
from clarion.openapi import install as install_openapi
from clarion.operations.routes import router as operations_router
from clarion.people.routes import admin_router as people_admin_router
from clarion.people.routes import router as people_router
from clarion.pricing.routes import router as pricing_router
from clarion.problems import install as install_problem_handlers
from clarion.problems import problem_response
from clarion.providers.webhooks import router as provider_webhooks_router
from clarion.segments.routes import router as segments_router
from clarion.sending import tasks as sending_tasks
from clarion.sending.routes import router as sending_router
from clarion.static_paths import StaticPathsFirst
from clarion.templates.routes import router as templates_router


def _listen(app: FastAPI) -> Listener:
    """This process's notification listener: it drops revoked keys from the key cache, and
    while it is not listening the cache trusts keys only briefly."""
    listener = Listener(app.state.db)
    cache = app.state.key_cache
    listener.subscribe(KEY_REVOKED_CHANNEL, lambda key_hash: forget_key(cache, key_hash))

    def on_state(live: bool) -> None:
        # SQLite's delivery is in-process only: should another process serve the same file,
        # it keeps the short trust that bounds a revocation's delay anyway.
        app.state.key_invalidation_live = live and not app.state.db.is_sqlite
        cache.clear()  # entries cached while deaf may be stale

    listener.on_state(on_state)
    return listener


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, clock: Clock = utcnow
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_db = db is None
        app.state.db = db or Database(settings.database_url)
        app.state.listener = _listen(app)
        await app.state.listener.start()
        app.state.events = EventHub(app.state.db, poll_seconds=settings.events_poll_seconds)
        await audience_tasks.on_startup(app)
        if settings.sender_enabled:
            await sending_tasks.start(app)
        try:
            yield
        finally:
            await sending_tasks.stop(app)  # also closes providers built for test sends
            await audience_tasks.on_shutdown(app)
            await app.state.events.stop()
            await app.state.listener.stop()
            if own_db:
                await app.state.db.dispose()

    app = FastAPI(
        title="Clarion",
        version=__version__,
        description="Send one message by SMS, RCS or WhatsApp to a whole contact list, "
        "priced exactly before you confirm. Errors are RFC 9457 problem documents; "
        "credits are JSON numbers with at most 4 decimal places. Input that no database can "
        "store is refused with 422 naming where it is: the NUL character (U+0000) or a lone "
        "surrogate in any string or key, a number JSON parses to infinity; a URL carrying "
        "`%00` likewise.",
        lifespan=lifespan,
        docs_url=None,  # apidocs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.key_cache = {}
    app.state.key_invalidation_live = False
    app.state.clock = clock
    # Salts the hash of a clicking visitor's address (see Settings.link_secret).
    app.state.link_secret = (
        settings.link_secret.encode() if settings.link_secret else token_bytes(32)
    )
    app.state.click_writer = ClickWriter()  # group commit of the redirects' clicks
    app.state.write_hooks = [AuditHook()]
    if db is not None:
        app.state.db = db
    install_problem_handlers(app)
    apidocs.install(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_import_bytes,
    )
    app.add_middleware(StaticPathsFirst)
    app.add_middleware(NoNulInUrl)
    # Outermost: a page navigation never reaches the API's middleware or size limits.
    app.add_middleware(ConsoleMiddleware, dist=settings.console_dir)
    # Around everything: every answer carries X-Request-ID, every log line of the request its
    # id; with JSON logs it writes the access lines (with the account id), not uvicorn.
    app.add_middleware(RequestIdMiddleware, log_requests=settings.log_format == "json")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], response_model=None)
    async def readyz() -> JSONResponse | dict[str, str]:
        """The database answers."""
        try:
            async with app.state.db.session(write=False) as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return problem_response(503, "Not ready", "The database does not answer.")
        return {"status": "ready"}

    for router in (
        redirect_router,  # first: the busiest route, matched before all others
        accounts_admin_router,
        account_router,
        compliance_router,
        people_admin_router,
        people_router,
        audit_router,
        audience_router,
        segments_router,
        templates_router,
        campaign_templates_router,
        pricing_router,
        campaigns_router,
        events_router,
        hooks_router,
        sending_router,
        links_router,
        provider_webhooks_router,
        operations_router,
    ):
        app.include_router(router)
    if settings.simulator_url:
        # Only an external simulator posts receipts; the in-process one hands them over
        # directly, so without one there is no simulator webhook to abuse.
        app.include_router(delivery_router)
    install_openapi(app)
    return app
