"""`clarion import`: the CSV import core run directly against the database."""

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from clarion.audience.history import Cause
from clarion.audience.imports import Progress as ImportProgress
from clarion.audience.imports import run_import
from clarion.audience.phones import check_region
from clarion.audience.repository import create_import, import_by_id, list_by_id
from clarion.config import get_settings
from clarion.db.migrate import upgrade
from clarion.db.session import Database
from clarion.procs import worker_pool

console = Console()


class RowsPerSecond(ProgressColumn):
    """Rows imported so far and the rate (the bar itself advances by bytes read)."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s", style="progress.data.speed")


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""

    @app.command("import")
    def import_csv(
        file: Annotated[
            Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file")
        ],
        list_id: Annotated[int, typer.Option("--list", help="id of the list to import into")],
        default_country: Annotated[
            str | None,
            typer.Option("--default-country", help="ISO country for national numbers, e.g. FR"),
        ] = None,
    ) -> None:
        """Import a CSV file into a list (the same rules as POST /lists/{id}/imports), with
        a progress bar. Settings (CLARION_DATABASE_URL) come from the environment."""
        try:
            region = check_region(default_country)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--default-country") from None
        settings = get_settings()
        upgrade(settings.database_url)
        code = asyncio.run(_run(settings.database_url, file, list_id, region))
        raise typer.Exit(code)


async def _run(database_url: str, path: Path, list_id: int, region: str | None) -> int:
    db = Database(database_url)
    pool = worker_pool(1)
    try:
        async with db.transaction() as session:
            target = await list_by_id(session, list_id)
            if target is None:
                console.print(f"[red]No list {list_id}.[/red]")
                return 2
            import_id = await create_import(session, target.account_id, list_id, path.name)
        size = os.stat(path).st_size
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]importing[/bold]"),
            BarColumn(),
            DownloadColumn(),
            RowsPerSecond(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("import", total=size, rows=0)

            def on_progress(progress: ImportProgress) -> None:
                bar.update(task, completed=progress.bytes_read, rows=progress.rows)

            result = await run_import(
                db,
                executor=pool,
                import_id=import_id,
                account_id=target.account_id,
                list_id=list_id,
                path=path,
                default_country=region,
                cause=Cause.system("import", "clarion import"),
                on_progress=on_progress,
            )
            bar.update(task, completed=size, rows=result.rows)
        elapsed = time.perf_counter() - started
        async with db.session(write=False) as session:
            final = await import_by_id(session, import_id)
        assert final is not None
        table = Table(title=f"import {import_id} into list {list_id}: {final.status}")
        for column in ("rows", "imported", "updated", "invalid", "seconds", "rows/s"):
            table.add_column(column, justify="right")
        table.add_row(
            f"{final.rows:,}",
            f"{final.imported:,}",
            f"{final.updated:,}",
            f"{final.invalid:,}",
            f"{elapsed:.1f}",
            f"{final.rows / elapsed:,.0f}" if elapsed > 0 else "-",
        )
        console.print(table)
        if final.failure_reason:
            console.print(f"[red]failed:[/red] {final.failure_reason}")
        for error in (final.errors or [])[:10]:
            console.print(f"  row {error['row']}: {error['phone']!r}: {error['reason']}")
        if final.invalid > 10:
            console.print(f"  ... {final.invalid - 10:,} more invalid rows")
        return 0 if final.status == "done" else 1
    finally:
        pool.shutdown(cancel_futures=True)
        await db.dispose()
