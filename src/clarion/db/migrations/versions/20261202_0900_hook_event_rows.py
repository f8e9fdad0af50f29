"""hook outbox rows: the events one statement writes for a hook are packed into rows of up
to 500 (a JSON array each) instead of a row per event

Revision ID: hook_event_rows
Revises: reservation_slice
Create Date: 2026-12-02 09:00:00

Each event already in the outbox becomes a row of one that keeps its id in the stored event
(`{"id", "type", "at", "data"}`), so a retried batch carries the ids its receiver has seen.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "hook_event_rows"
down_revision: str | None = "reservation_slice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 5_000


def _utc_z(value: Any) -> str:
    """An `at` as the batches always showed it (SQLite gives naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def _data(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    with op.batch_alter_table("hook_event") as batch_op:
        batch_op.add_column(sa.Column("event_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("events", sa.Text(), nullable=True))
    bind = op.get_bind()
    last = 0
    while True:
        page = bind.execute(
            sa.text(
                "SELECT id, type, at, data FROM hook_event WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": PAGE},
        ).all()
        if not page:
            break
        bind.execute(
            sa.text("UPDATE hook_event SET event_count = 1, events = :events WHERE id = :id"),
            [
                {
                    "id": row.id,
                    "events": orjson.dumps(
                        [
                            {
                                "id": row.id,
                                "type": row.type,
                                "at": _utc_z(row.at),
                                "data": _data(row.data),
                            }
                        ]
                    ).decode(),
                }
                for row in page
            ],
        )
        last = page[-1].id
    with op.batch_alter_table("hook_event") as batch_op:
        batch_op.alter_column("event_count", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("events", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("type")
        batch_op.drop_column("data")
        batch_op.drop_column("at")


def downgrade() -> None:
    # Packed rows cannot go back to a row per event with the ids they were delivered under.
    raise NotImplementedError("the hook outbox's packed rows cannot be unpacked")
