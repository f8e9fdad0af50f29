"""consent per contact and channel; the contact history's actor and consent status;
inbound events and campaign-less messages (keyword replies)

Revision ID: consent
Revises: compliance
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db.base

revision: str = "consent"
down_revision: str | None = "compliance"
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
    op.create_table(
        "inbound_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("from_phone", sa.String(length=32), nullable=False),
        sa.Column("to", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=True),
        sa.Column("reply_message_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", clarion.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_event")),
        sa.UniqueConstraint(
            "provider",
            "provider_message_id",
            name=op.f("uq_inbound_event_provider_provider_message_id"),
        ),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.alter_column("campaign_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sender", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_message_phone_sent",
            ["phone", "sent_at"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_message_phone_sent",
            postgresql_where=sa.text("sent_at IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NOT NULL"),
        )
        batch_op.drop_column("sender")
        batch_op.drop_column("text")
        batch_op.alter_column("campaign_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_table("inbound_event")
    with op.batch_alter_table("opt_out_event", schema=None) as batch_op:
        batch_op.drop_column("actor_name")
        batch_op.drop_column("actor_id")
        batch_op.drop_column("actor_type")
        batch_op.drop_column("status")
    op.drop_table("contact_consent")
