"""reservation slices: part of a campaign's reservation set aside for one worker, which pays
its batches from it without locking the account row

Revision ID: reservation_slice
Revises: inbound_phone
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reservation_slice"
down_revision: str | None = "inbound_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reservation_slice",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "amount >= 0", name=op.f("ck_reservation_slice_slice_amount_not_negative")
        ),
        sa.CheckConstraint(
            "spent >= 0", name=op.f("ck_reservation_slice_slice_spent_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_reservation_slice_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "owner", name=op.f("pk_reservation_slice")),
    )
    op.create_index(
        op.f("ix_reservation_slice_account_id"), "reservation_slice", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_reservation_slice_account_id"), table_name="reservation_slice")
    op.drop_table("reservation_slice")
