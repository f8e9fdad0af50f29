"""event hooks: endpoints, the event outbox, deliveries

Revision ID: hooks
Revises: segments
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db.base

revision: str = "hooks"
down_revision: str | None = "segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = clarion.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hook",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("event_types", sa.String(length=1000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", _TIME, nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_hook_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook")),
    )
    with op.batch_alter_table("hook", schema=None) as batch_op:
        batch_op.create_index("ix_hook_account", ["account_id", "id"], unique=False)

    op.create_table(
        "hook_event",
        sa.Column("id", _ID, nullable=False),
        sa.Column("hook_id", _ID, nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["hook_id"], ["hook.id"], name=op.f("fk_hook_event_hook_id_hook"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_event")),
    )
    with op.batch_alter_table("hook_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hook_event_pending",
            ["hook_id", "id"],
            unique=False,
            postgresql_where=sa.text("delivery_id IS NULL"),
            sqlite_where=sa.text("delivery_id IS NULL"),
        )
        batch_op.create_index("ix_hook_event_delivery", ["delivery_id"], unique=False)

    op.create_table(
        "hook_delivery",
        sa.Column("id", _ID, nullable=False),
        sa.Column("hook_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("window_started_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["hook_id"],
            ["hook.id"],
            name=op.f("fk_hook_delivery_hook_id_hook"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_delivery")),
    )
    with op.batch_alter_table("hook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hook_delivery_hook_status", ["hook_id", "status", "id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("hook_delivery")
    op.drop_table("hook_event")
    op.drop_table("hook")
