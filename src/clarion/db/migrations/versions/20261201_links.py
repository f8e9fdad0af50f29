"""tracked links and smart encoding: campaign options, link and click tables

Revision ID: links
Revises: consent
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db.base

revision: str = "links"
down_revision: str | None = "consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(
            sa.Column(
                "smart_encoding", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )
        batch.add_column(
            sa.Column("track_links", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch.add_column(sa.Column("link_base_url", sa.String(length=200), nullable=True))
    op.create_table(
        "link",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_clicked_at", clarion.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_link")),
    )
    op.create_index(
        "ux_link_campaign_message", "link", ["campaign_id", "message_id", "position"], unique=True
    )
    op.create_index(
        "ix_link_clicked",
        "link",
        ["campaign_id", "message_id"],
        postgresql_where=sa.text("clicks > 0"),
        sqlite_where=sa.text("clicks > 0"),
    )
    op.create_table(
        "click",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["code"], ["link.code"], name=op.f("fk_click_code_link"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click")),
    )
    op.create_index("ix_click_code", "click", ["code"])


def downgrade() -> None:
    op.drop_index("ix_click_code", table_name="click")
    op.drop_table("click")
    op.drop_index("ix_link_clicked", table_name="link")
    op.drop_index("ux_link_campaign_message", table_name="link")
    op.drop_table("link")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("link_base_url")
        batch.drop_column("track_links")
        batch.drop_column("smart_encoding")
