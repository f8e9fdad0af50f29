"""The engine's entry points for the embedded shape (`clarion serve`)."""

from fastapi import FastAPI

from clarion.providers.base import Provider
from clarion.sending.engine import Engine, distinct


async def start(app: FastAPI) -> None:
    """Start the scheduler and the sender in this process."""
    engine = Engine(app.state.settings, app.state.db, clock=app.state.clock)
    await engine.start()
    app.state.engine = engine


async def stop(app: FastAPI) -> None:
    """Finish or release in-flight work (within 10 s), and close the providers that an API-only
    process (`--no-sender`) built for test sends."""
    engine: Engine | None = getattr(app.state, "engine", None)
    if engine is not None:
        await engine.stop(timeout=10.0)
        app.state.engine = None
    providers: dict[str, Provider] | None = getattr(app.state, "test_providers", None)
    if providers:
        for provider in distinct(providers):
            await provider.close()
        app.state.test_providers = None
