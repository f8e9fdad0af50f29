"""retention of hook deliveries: the index retention finds old deliveries by

Revision ID: retention_hooks
Revises: retention_links
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "retention_hooks"
down_revision: str | None = "retention_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_hook_delivery_created", "hook_delivery", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_hook_delivery_created", table_name="hook_delivery")
