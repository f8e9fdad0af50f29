"""`clarion templates sync`, `clarion smsc`, `clarion simulator`."""

import asyncio
import contextlib
import sys
import threading
from typing import Annotated, NamedTuple

import typer
from pydantic import ValidationError
from rich.console import Console

from clarion.accounts import repository as accounts_repository
from clarion.config import Settings, get_settings
from clarion.db.session import Database
from clarion.errors import ClarionError
from clarion.providers.base import ProviderConfigError
from clarion.providers.config_check import check
from clarion.providers.simulator_server import Faults, ServerConfig, run
from clarion.providers.smpp.smsc import Smsc
from clarion.providers.whatsapp_cloud import TEMPLATE_STATUS, fetch_templates, template_body
from clarion.templates import service as templates_service
from clarion.templates.schemas import TemplateCreate

console = Console()


def check_providers(settings: Settings) -> None:
    """Stop at start, with one sentence, when a selected provider lacks its settings."""
    try:
        check(settings)
    except ProviderConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


# -- clarion simulator (the HTTP provider simulator) -----------------------------------------
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
    """Run the HTTP provider simulator; it signs receipts with CLARION_SIMULATOR_SECRET
    (required: Clarion refuses unsigned ones)."""
    settings = get_settings()
    if not settings.simulator_secret:
        console.print(
            "[red]Set CLARION_SIMULATOR_SECRET (and the same value for Clarion): the "
            "simulator signs the receipts it posts to /webhooks/simulator with it.[/red]"
        )
        raise typer.Exit(2)
    delay = settings.simulator_receipt_delay if receipt_delay is None else receipt_delay
    faults = Faults(
        error_rate, throttle_rate, drop_rate, timeout_rate, fail_rate, latency_ms, delay
    )
    run(ServerConfig(host, port, receipt_url, settings.simulator_secret, hang_seconds, faults))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""
    app.command("simulator")(simulator)
    register_templates_sync(app)
    register_smsc(app)


# -- clarion templates sync ------------------------------------------------------------------
def register_templates_sync(app: typer.Typer) -> None:
    templates_app = typer.Typer(help="Message templates.", no_args_is_help=True)
    app.add_typer(templates_app, name="templates")

    @templates_app.command("sync")
    def templates_sync(
        account: Annotated[int, typer.Option("--account", help="Clarion account id")],
        waba: Annotated[
            str | None,
            typer.Option(
                help="WhatsApp Business Account id (CLARION_WHATSAPP_BUSINESS_ACCOUNT_ID)"
            ),
        ] = None,
    ) -> None:
        """Pull the WhatsApp Business Account's templates (GET /{waba}/message_templates,
        every page) and upsert them into the account: name, language, category, status, body.
        A template that breaks the rules of one made through the API, or that would change
        what a local template of that name sends, is left alone and named (exit 1)."""
        settings = get_settings()
        waba_id = waba or settings.whatsapp_business_account_id
        if not waba_id or not settings.whatsapp_token:
            console.print(
                "[red]CLARION_WHATSAPP_BUSINESS_ACCOUNT_ID (or --waba) and "
                "CLARION_WHATSAPP_TOKEN must be set[/red]"
            )
            raise typer.Exit(2)
        try:
            result = asyncio.run(sync_templates(settings, account, waba_id))
        except (RuntimeError, LookupError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        console.print(
            f"templates synced: {result.created} created, {result.updated} updated, "
            f"{len(result.refused)} left unchanged"
        )
        for reason in result.refused:
            console.print(reason, style="red", markup=False)
        if result.refused:
            raise typer.Exit(1)


class SyncResult(NamedTuple):
    created: int
    updated: int
    refused: list[str]  # one sentence per template left alone ("name (language): why")


def _reason(exc: ValidationError | ClarionError) -> str:
    if isinstance(exc, ClarionError):
        return exc.detail
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


async def sync_templates(settings: Settings, account_id: int, waba_id: str) -> SyncResult:
    """Upsert the WABA's templates into the account through the templates service (the
    rules and defaults of templates made through the API)."""
    items = [item async for item in fetch_templates(settings, waba_id)]
    db = Database(settings.database_url)
    result = SyncResult(0, 0, [])
    try:
        async with db.transaction() as session:
            if await accounts_repository.get_account(session, account_id) is None:
                raise LookupError(f"account {account_id} does not exist")
            for item in items:
                name, language = str(item.get("name", "")), str(item.get("language", ""))
                if not name or not language:
                    continue
                try:
                    body = TemplateCreate(
                        name=name,
                        channel="whatsapp",
                        language=language,
                        category=str(item.get("category") or "").lower() or None,
                        body=template_body(item),
                        status=TEMPLATE_STATUS.get(str(item.get("status", "")).upper(), "pending"),
                    )
                    provider_id = str(item["id"]) if item.get("id") else None
                    created = await templates_service.sync_template(
                        session, account_id, body, provider_id
                    )
                except (ValidationError, ClarionError) as exc:
                    result.refused.append(f"{name} ({language}): {_reason(exc)}")
                    continue
                result = result._replace(
                    created=result.created + created, updated=result.updated + (not created)
                )
    finally:
        await db.dispose()
    return result


# -- clarion smsc ----------------------------------------------------------------------------
def register_smsc(app: typer.Typer) -> None:
    @app.command("smsc")
    def smsc(
        port: Annotated[int, typer.Option(help="TCP port to listen on")] = 2775,
        host: Annotated[str, typer.Option(help="interface (loopback by default)")] = "127.0.0.1",
        system_id: Annotated[str, typer.Option(help="ESME system_id accepted")] = "clarion",
        password: Annotated[str, typer.Option(help="its password")] = "secret",
        receipt_delay: Annotated[float, typer.Option(help="seconds before a receipt")] = 1.0,
        receipt_jitter: Annotated[
            float, typer.Option(help="extra random delay (receipts out of order)")
        ] = 0.5,
        receipt_format: Annotated[str, typer.Option(help="tlv | text | both")] = "both",
    ) -> None:
        """Run the SMPP 3.4 SMSC simulator. Commands on standard input: `mo <phone> <text>`
        (send an MO message), `throttle <n>`, `drop` (close every connection), `stats`."""
        if receipt_format not in ("tlv", "text", "both"):
            raise typer.BadParameter("tlv, text or both", param_hint="--receipt-format")
        simulator = Smsc(
            host=host,
            port=port,
            credentials={system_id: password},
            receipt_delay=receipt_delay,
            receipt_jitter=receipt_jitter,
            receipt_format=receipt_format,  # type: ignore[arg-type]
            keep=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run_smsc(simulator))


async def _run_smsc(simulator: Smsc) -> None:
    port = await simulator.start()
    console.print(f"SMSC simulator listening on {simulator.host}:{port}")
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:  # a daemon thread: it never holds the process at exit
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)

    threading.Thread(target=read_stdin, daemon=True, name="smsc-stdin").start()
    try:
        while True:
            _command(simulator, (await lines.get()).rstrip("\r\n").split(maxsplit=2))
    finally:
        await simulator.stop()


def _command(simulator: Smsc, words: list[str]) -> None:
    try:
        if words[:1] == ["mo"] and len(words) == 3:
            simulator.send_mo(words[1], words[2])
        elif words[:1] == ["throttle"] and len(words) == 2:
            simulator.throttle_next = int(words[1])
        elif words[:1] == ["drop"]:
            console.print(f"dropped {simulator.drop_connections()} connection(s)")
        elif words[:1] == ["stats"]:
            console.print(
                f"binds={simulator.bind_count} submits={simulator.submit_count} "
                f"receipts={simulator.receipts_sent}"
            )
        elif words:
            console.print("commands: mo <phone> <text> | throttle <n> | drop | stats")
    except (RuntimeError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
