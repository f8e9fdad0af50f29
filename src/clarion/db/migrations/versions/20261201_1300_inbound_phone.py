"""inbound messages by phone: an SMPP MO, which has no id, is compared with the phone's
latest inbound message to tell a redelivery from a new message

Revision ID: inbound_phone
Revises: retention_hooks
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "inbound_phone"
down_revision: str | None = "retention_hooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_inbound_event_phone",
        "inbound_event",
        ["provider", "from_phone", "received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_event_phone", table_name="inbound_event")
