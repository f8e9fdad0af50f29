"""segments: saved contact filters, campaign targeting by segment and filter, contact region
and time zone

Revision ID: segments
Revises: abtest
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db.base

revision: str = "segments"
down_revision: str | None = "abtest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("created_at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_segment_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment")),
    )
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_account_id"), ["account_id"], unique=False)

    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region", sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_contact_account_country", ["account_id", "country"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Attribute equality (eq, in) compiles to jsonb containment, which this answers.
        op.create_index(
            "ix_contact_attributes",
            "contact",
            ["attributes"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        )

    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_ids", JSON, server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("segment_filters", JSON, server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("audience_filter", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("audience_filter")
        batch_op.drop_column("segment_filters")
        batch_op.drop_column("segment_ids")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_contact_attributes", table_name="contact")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_account_country")
        batch_op.drop_column("timezone")
        batch_op.drop_column("region")
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_account_id"))
    op.drop_table("segment")
