"""A/B tests: campaign variants, the test settings and decision, the message's variant

Revision ID: abtest
Revises: retention
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db.base

revision: str = "abtest"
down_revision: str | None = "retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column("campaign", sa.Column("variants", json, nullable=True))
    op.add_column("campaign", sa.Column("ab_test", json, nullable=True))
    op.add_column("campaign", sa.Column("ab_seed", sa.BigInteger(), nullable=True))
    op.add_column(
        "campaign",
        sa.Column("ab_test_at", clarion.db.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("campaign", sa.Column("ab_winner", sa.String(length=32), nullable=True))
    op.add_column(
        "campaign",
        sa.Column("ab_decided_at", clarion.db.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("message", sa.Column("variant", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("message", "variant")
    for column in ("ab_decided_at", "ab_winner", "ab_test_at", "ab_seed", "ab_test", "variants"):
        op.drop_column("campaign", column)
