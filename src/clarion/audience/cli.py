"""`clarion import`."""

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the `clarion` command."""
