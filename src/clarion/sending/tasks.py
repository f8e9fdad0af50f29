"""The engine's entry points for the embedded shape (`clarion serve`)."""

from fastapi import FastAPI


async def start(app: FastAPI) -> None:
    """Start the scheduler and the sender in this process."""


async def stop(app: FastAPI) -> None:
    """Finish or release in-flight work (within 10 s)."""
