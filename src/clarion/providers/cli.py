"""`clarion templates sync`, `clarion simulator`."""

from typing import Annotated

import typer


def simulator(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8025,
    latency_ms: Annotated[float, typer.Option(min=0.0, help="added per request")] = 0.0,
    fail_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="accepted, then failed")] = 0.0,
    throttle_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="requests answered 429")
    ] = 0.0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="requests answered 500")
    ] = 0.0,
    drop_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="connection closed, no answer")
    ] = 0.0,
    timeout_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="hang past the client timeout")
    ] = 0.0,
    receipt_delay: Annotated[
        float | None,
        typer.Option(min=0.0, help="seconds (default: CLARION_SIMULATOR_RECEIPT_DELAY)"),
    ] = None,
    receipt_url: Annotated[
        str | None, typer.Option(help="where receipts go (default: each submit's X-Receipt-Url)")
    ] = None,
    hang_seconds: Annotated[
        float, typer.Option(min=0.0, help="how long a timeout fault hangs")
    ] = 30.0,
) -> None:
    """Run the HTTP provider simulator (signs receipts with CLARION_SIMULATOR_SECRET if set)."""
    from clarion.config import get_settings
    from clarion.providers.simulator_server import Faults, ServerConfig, run

    settings = get_settings()
    delay = settings.simulator_receipt_delay if receipt_delay is None else receipt_delay
    faults = Faults(
        error_rate, throttle_rate, drop_rate, timeout_rate, fail_rate, latency_ms, delay
    )
    run(ServerConfig(host, port, receipt_url, settings.simulator_secret, hang_seconds, faults))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""
    app.command("simulator")(simulator)
