"""The `clarion` command."""

import asyncio
import os
import sys
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from clarion import heap, logs
from clarion.accounts.schemas import AccountCreate
from clarion.accounts.service import create_account
from clarion.app import create_app
from clarion.audience.cli import register as audience_commands
from clarion.auth import ensure_admin_token
from clarion.auth import reset_admin_token as reset_admin_token_in
from clarion.config import Settings, get_settings
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.errors import ClarionError
from clarion.httpserver import protocol_class
from clarion.money import to_units
from clarion.people.cli import register as people_commands
from clarion.providers.cli import check_providers
from clarion.providers.cli import register as provider_commands
from clarion.sending.cli import register as sending_commands

app = typer.Typer(help="Clarion: SMS, RCS and WhatsApp campaigns.", no_args_is_help=True)
db_app = typer.Typer(help="Database chores.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
console = Console()
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def _validation_sentence(exc: ValidationError) -> str:
    from_env = exc.title == Settings.__name__
    parts = []
    for error in exc.errors()[:5]:
        field = ".".join(str(part) for part in error.get("loc", ())) or "value"
        if from_env:
            field = "CLARION_" + field.upper()
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"invalid {field}: {message}")
    return "; ".join(parts)


def describe(exc: BaseException) -> str:
    """One sentence for an error that ends a command."""
    if isinstance(exc, ClarionError):
        return exc.detail
    if isinstance(exc, ValidationError):
        return _validation_sentence(exc)
    if isinstance(exc, DBAPIError):
        first = str(exc.orig or exc).strip().splitlines()
        return f"the database refused or failed the operation: {first[0] if first else exc}"
    text = str(exc).strip().splitlines()
    if isinstance(exc, ConnectionError):
        return f"cannot connect: {text[0] if text else type(exc).__name__}"
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def main() -> None:
    """The `clarion` command: an error is one sentence on stderr and a non-zero exit, never
    a traceback (set CLARION_TRACEBACK=1 to see one when reporting a bug)."""
    try:
        app()
    except KeyboardInterrupt:
        errors.print("clarion: interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CLARION_TRACEBACK"):
            raise
        errors.print(f"clarion: {describe(exc)}", markup=False)
        sys.exit(2 if isinstance(exc, ClarionError | ValidationError) else 1)


def _register_domain_commands() -> None:
    for register in (audience_commands, sending_commands, provider_commands, people_commands):
        register(app)


def _migrate(settings: Settings) -> None:
    upgrade(settings.database_url)


async def _ensure_admin_token(settings: Settings) -> str | None:
    db = Database(settings.database_url)
    try:
        return await ensure_admin_token(db, settings.admin_token)
    finally:
        await db.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    no_sender: Annotated[
        bool, typer.Option("--no-sender", help="API only; run `clarion worker` elsewhere")
    ] = False,
) -> None:
    """Run the API (and, unless --no-sender, the scheduler and sender) in one process."""
    settings = get_settings()
    if no_sender:
        settings = settings.model_copy(update={"sender_enabled": False})
    check_providers(settings)
    _migrate(settings)
    token = asyncio.run(_ensure_admin_token(settings))
    if token:
        console.print(
            f"[bold]Admin token[/bold] (shown once; set CLARION_ADMIN_TOKEN to choose one): {token}"
        )
    json_logs = settings.log_format == "json"
    if json_logs:
        logs.configure("json")  # uvicorn's lines too; access lines come from the app
    app = create_app(settings)
    # Under redirect load on PostgreSQL, full collections of the whole heap paused the event
    # loop, and every request in flight, for 85-295 ms several times in 8 s; 11-15 ms once
    # the heap loaded at start was frozen (see clarion.heap).
    heap.settle()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol_class(settings),  # httptools, with header timeout and connection cap
        backlog=settings.http_backlog,
        timeout_keep_alive=settings.http_keep_alive,
        log_level="info",
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
        access_log=not json_logs,
        timeout_graceful_shutdown=10,
    )


@app.command("reset-admin-token")
def reset_admin_token() -> None:
    """Replace the stored admin token with a new one and print it (shown once)."""
    settings = get_settings()
    _migrate(settings)

    async def run() -> str:
        db = Database(settings.database_url)
        try:
            return await reset_admin_token_in(db)
        finally:
            await db.dispose()

    token = asyncio.run(run())
    console.print(f"[bold]New admin token[/bold] (shown once): {token}")
    if settings.admin_token:
        console.print(
            "[yellow]CLARION_ADMIN_TOKEN is set: the server uses that one, not this; unset it "
            "to use this token.[/yellow]"
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    _migrate(get_settings())
    console.print("database is up to date")


@accounts_app.command("create")
def accounts_create(
    name: str,
    credits: Annotated[str, typer.Option(help="initial credits")] = "0",
) -> None:
    """Create an account and print its API key (shown once)."""
    body = AccountCreate(name=name, credits=credits)  # the API's rules, checked first
    settings = get_settings()
    _migrate(settings)

    async def run() -> tuple[int, str]:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                account, key = await create_account(session, body.name, to_units(body.credits))
                return account.id, key
        finally:
            await db.dispose()

    account_id, key = asyncio.run(run())
    console.print(f"account {account_id} created; API key (shown once): {key}")


_register_domain_commands()
