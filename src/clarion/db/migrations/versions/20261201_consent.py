"""consent per contact and channel; the contact history's actor and consent status

Revision ID: consent
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db.base

revision: str = "consent"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_consent",
        sa.Column(
            "contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("proof", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_contact_consent_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "channel", name=op.f("pk_contact_consent")),
    )
    with op.batch_alter_table("opt_out_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("actor_type", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("actor_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("actor_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opt_out_event", schema=None) as batch_op:
        batch_op.drop_column("actor_name")
        batch_op.drop_column("actor_id")
        batch_op.drop_column("actor_type")
        batch_op.drop_column("status")
    op.drop_table("contact_consent")
