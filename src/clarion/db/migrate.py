"""Run Alembic migrations programmatically (at `serve` start, `clarion db upgrade`, tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from clarion.db.session import async_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the schema. Must be called outside a running event loop."""
    command.upgrade(alembic_config(database_url), revision)
