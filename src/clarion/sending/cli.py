"""`clarion worker` and `clarion demo`."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
import uvloop
from rich.console import Console

from clarion import heap, logs
from clarion.config import get_settings
from clarion.db.session import Database
from clarion.operations.server import serve_metrics
from clarion.providers.cli import check_providers
from clarion.sending.demo import run_demo
from clarion.sending.engine import Engine

console = Console()


async def run_worker(lanes: int, metrics_port: int | None = None) -> None:
    """Scheduler + sender until SIGTERM/SIGINT, then a graceful stop (<= 10 s); with
    `metrics_port`, the Prometheus exposition on that port (same token rule as the API)."""
    settings = get_settings()
    db = Database(settings.database_url)
    engine = Engine(settings, db, lanes=lanes)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await serve_metrics(settings, db, metrics_port) if metrics_port else None
    await engine.start()
    console.print(f"worker {engine.owner} running; Ctrl-C to stop")
    try:
        await stop.wait()
    finally:
        await engine.stop(timeout=10.0)
        if runner is not None:
            await runner.cleanup()
        await db.dispose()
    console.print("worker stopped")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""

    @app.command()
    def worker(
        lanes: Annotated[int, typer.Option(help="batches in flight at once", min=1, max=32)] = 3,
        metrics_port: Annotated[
            int | None,
            typer.Option(
                help="serve Prometheus metrics at /metrics on this port "
                "(Bearer CLARION_METRICS_TOKEN)",
                min=1,
                max=65535,
            ),
        ] = None,
    ) -> None:
        """Run the scheduler and the sender without HTTP (any number of them on PostgreSQL)."""
        settings = get_settings()
        logs.configure(settings.log_format)
        # A selected provider with missing settings stops here, with one sentence.
        check_providers(settings)
        heap.settle()
        uvloop.run(run_worker(lanes, metrics_port))

    @app.command()
    def demo(
        phones: Annotated[int, typer.Option(help="simulator numbers in the demo list")] = 5,
    ) -> None:
        """Create an account, a list of simulator numbers and a campaign; send it and print
        its progress (embedded: runs the engine in this process)."""
        asyncio.run(run_demo(phones, console))
