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
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="marketing", nullable=False)
        )
        batch_op.add_column(sa.Column("send_window", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("expires_at", clarion.db.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("region", sa.String(length=6), nullable=True))
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_before", clarion.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_message_contact_sent",
            ["account_id", "contact_id", "sent_at"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_message_contact_sent",
            postgresql_where=sa.text("sent_at IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NOT NULL"),
        )
        batch_op.drop_column("not_before")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_column("region")
        batch_op.drop_column("timezone")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("send_window")
        batch_op.drop_column("purpose")
    op.drop_table("compliance_settings")
