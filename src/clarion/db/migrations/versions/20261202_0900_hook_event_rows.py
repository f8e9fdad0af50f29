"""hook outbox rows: the events one statement writes for a hook are packed into rows of up
to 500 (a JSON array each) instead of a row per event

Revision ID: hook_event_rows
Revises: reservation_slice
Create Date: 2026-12-02 09:00:00

Each event already in the outbox becomes a row of one that keeps its id in the stored event
(`{"id", "type", "at", "data"}`), so a retried batch carries the ids its receiver has seen;
one UPDATE per dialect, so a large outbox is converted by the database, not row by row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hook_event_rows"
down_revision: str | None = "reservation_slice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each event as a packed row of one, in one statement whatever the outbox's size. `at` is
# written with its microseconds (the same instant as before, RFC 3339 in UTC).
PACK_ONE = {
    "postgresql": (
        "UPDATE hook_event SET event_count = 1, events = json_build_array(json_build_object("
        "'id', id, 'type', type, "
        "'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "'data', data))::text"
    ),
    # SQLite holds `at` as naive UTC text with microseconds ("2026-12-01 09:30:00.000000").
    "sqlite": (
        "UPDATE hook_event SET event_count = 1, events = json_array(json_object("
        "'id', id, 'type', type, 'at', replace(at, ' ', 'T') || 'Z', 'data', json(data)))"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("hook_event") as batch_op:
        batch_op.add_column(sa.Column("event_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("events", sa.Text(), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text(PACK_ONE[bind.dialect.name]))
    with op.batch_alter_table("hook_event") as batch_op:
        batch_op.alter_column("event_count", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("events", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("type")
        batch_op.drop_column("data")
        batch_op.drop_column("at")


def downgrade() -> None:
    # Packed rows cannot go back to a row per event with the ids they were delivered under.
    raise NotImplementedError("the hook outbox's packed rows cannot be unpacked")
