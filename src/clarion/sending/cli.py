"""`clarion worker`, `clarion simulator`, `clarion demo`."""

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""
