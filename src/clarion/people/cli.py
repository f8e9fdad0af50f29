"""`clarion users create`: the first user of an account, from the command line."""

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from clarion.audit import service as audit
from clarion.config import get_settings
from clarion.db.base import utcnow
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.errors import ClarionError
from clarion.people import service
from clarion.people.passwords import MIN_LENGTH
from clarion.people.schemas import UserCreate
from clarion.roles import ROLES

users_app = typer.Typer(help="Users who sign in to the console.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(sentence: str) -> None:
    err.print(f"[red]{sentence}[/red]")
    raise typer.Exit(1)


def _read_password() -> str:
    """Asked twice on a terminal; otherwise the first line of standard input."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users_app.command("create")
def users_create(
    email: str,
    account: Annotated[int, typer.Option("--account", help="the account's id")],
    role: Annotated[str, typer.Option(help="viewer, editor, manager or owner")] = "owner",
    name: Annotated[str | None, typer.Option(help="the person's name")] = None,
) -> None:
    """Create a user of an account. The password is asked for (twice) on a terminal, or read
    from the first line of standard input: `echo "$PASSWORD" | clarion users create ...`."""
    if role not in ROLES:
        _fail(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    password = _read_password()
    if len(password) < MIN_LENGTH:
        _fail(f"The password must be at least {MIN_LENGTH} characters long.")
    try:
        body = UserCreate(email=email, password=password, name=name, role=role)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "input"
        message = str(first["msg"]).removeprefix("Value error, ")
        _fail(f"The {field} {message.lower()}.")
        return
    settings = get_settings()
    upgrade(settings.database_url)

    async def run() -> tuple[int, str]:
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                user = await service.create_user(session, account, body, utcnow())
                await audit.record(
                    session,
                    account_id=account,
                    actor=audit.Actor("system", None, "clarion users create"),
                    action="user.create",
                    target=("user", user.id),
                    detail={"email": user.email, "role": user.role},
                )
                return user.id, user.email
        finally:
            await db.dispose()

    try:
        user_id, user_email = asyncio.run(run())
    except ClarionError as exc:
        _fail(exc.detail)
        return
    console.print(f"user {user_id} ({user_email}, {role}) created in account {account}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
