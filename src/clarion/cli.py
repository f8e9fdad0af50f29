"""The `clarion` command."""

import asyncio
from decimal import Decimal
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from clarion.accounts.service import create_account
from clarion.app import create_app
from clarion.audience.cli import register as audience_commands
from clarion.auth import ensure_admin_token
from clarion.config import Settings, get_settings
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.money import to_units
from clarion.people.cli import register as people_commands
from clarion.providers.base import ProviderConfigError
from clarion.providers.cli import register as provider_commands
from clarion.providers.config_check import check
from clarion.sending.cli import register as sending_commands

app = typer.Typer(help="Clarion: SMS, RCS and WhatsApp campaigns.", no_args_is_help=True)
db_app = typer.Typer(help="Database chores.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
console = Console()


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


def check_providers(settings: Settings) -> None:
    """Stop at start, with one sentence, when a selected provider lacks its settings."""
    try:
        check(settings)
    except ProviderConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


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
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        timeout_graceful_shutdown=10,
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
    settings = get_settings()
    _migrate(settings)

    async def run() -> tuple[int, str]:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                account, key = await create_account(session, name, to_units(Decimal(credits)))
                return account.id, key
        finally:
            await db.dispose()

    account_id, key = asyncio.run(run())
    console.print(f"account {account_id} created; API key (shown once): {key}")


_register_domain_commands()
