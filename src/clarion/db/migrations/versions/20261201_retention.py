"""retention: campaign.purged_at and the index retention finds campaigns by

Revision ID: retention
Revises: 0001
Create Date: 2026-12-01 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db.base

revision: str = "retention"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TO_PURGE = "purged_at IS NULL AND completed_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("purged_at", clarion.db.base.UTCDateTime(), nullable=True))
    op.create_index(
        "ix_campaign_to_purge",
        "campaign",
        ["completed_at"],
        unique=False,
        postgresql_where=sa.text(TO_PURGE),
        sqlite_where=sa.text(TO_PURGE),
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_to_purge", table_name="campaign")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("purged_at")
