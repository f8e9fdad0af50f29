"""retention of tracked links: the clicks of the links it deleted, kept on the campaign

Revision ID: retention_links
Revises: links
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "retention_links"
down_revision: str | None = "links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(
            sa.Column("purged_clicks", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column(
                "purged_unique_clicks",
                sa.BigInteger(),
                server_default=sa.text("0"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("purged_unique_clicks")
        batch.drop_column("purged_clicks")
