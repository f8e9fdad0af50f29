"""Background work of the audience domain."""

from fastapi import FastAPI


async def on_startup(app: FastAPI) -> None:
    """Imports run in this process only: one left `running` by a previous process is failed."""


async def on_shutdown(app: FastAPI) -> None:
    """Stop running imports."""
