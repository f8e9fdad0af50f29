"""compliance: settings, sending hours, send windows, expiry, frequency cap

Revision ID: compliance
Revises: 0001
Create Date: 2026-12-01 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db.base

revision: str = "compliance"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "compliance_settings",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sending_hours", JSON, nullable=False),
        sa.Column("cap_messages", sa.Integer(), nullable=True),
        sa.Column("cap_period_hours", sa.Integer(), nullable=True),
        sa.Column("require_consent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("opt_out_keywords", JSON, nullable=False),
        sa.Column("opt_in_keywords", JSON, nullable=False),
        sa.Column("help_keywords", JSON, nullable=False),
        sa.Column("opt_out_reply", sa.Text(), nullable=True),
        sa.Column("opt_in_reply", sa.Text(), nullable=True),
        sa.Column("help_reply", sa.Text(), nullable=True),
        sa.Column("updated_at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_compliance_settings_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_compliance_settings")),
    )


def downgrade() -> None:
    op.drop_table("compliance_settings")
